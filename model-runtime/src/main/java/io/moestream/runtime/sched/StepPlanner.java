package io.moestream.runtime.sched;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Plans each step of continuous batching: which waiting requests join ({@link #admissions}) and
 * how many tokens each running request computes ({@link #allocate}). It only plans: it never sees
 * caches, logits or state (vLLM's split of {@code schedule()} from the model runner). The one
 * planner of {@code generate}, {@code bench}, the Flink operator and the benchmarks.
 *
 * <p>Rules, per step:
 * <ul>
 *   <li>every decoding request gets one token; the rest of {@code tokenBudget} goes to prefill
 *       chunks, so a long prompt (or document part) is prefilled over several steps while others
 *       keep decoding;</li>
 *   <li>attention work ({@link #work}: a chunk's tokens times the positions they attend to) is
 *       bounded by {@code workBudget} as well, so a chunk deep in a long context is cut smaller and
 *       a step's cost stays bounded however long the context;</li>
 *   <li>chunking ({@link #chunk}): a prefill chunk is the rest of the prompt or a multiple of
 *       {@link #ALIGN} tokens that leaves at least two. The engine computes a one-token chunk in
 *       decode order, and the last {@code len % 4} rows of a chunk of a repacked K-quant in gemv
 *       order (other float sums, as llama.cpp), so with this rule every prompt row is summed as in
 *       one whole-prompt chunk: a request's bits do not depend on where its prompt was cut, i.e. on
 *       what else shared its steps;</li>
 *   <li>admission is round-robin over tenants, least recently served first, while fewer than
 *       {@code maxSequences} run;</li>
 *   <li>fairness: while more than one tenant wants work, a tenant gets at most
 *       {@code tenantShare} of the sequences (at admission) and of the prefill tokens (per step);
 *       capacity nobody else wants is not withheld. Running requests are never preempted, so a
 *       newcomer waits at most until the first running request finishes.</li>
 * </ul>
 * One per step loop. {@link #admissions} keeps round-robin state and is not thread-safe;
 * {@link #allocate} reads only the planner's settings, so a loop may call it from another thread.
 */
public final class StepPlanner {

    /** What the planner needs to know of a running request. */
    public interface Planned {
        String tenant();

        /** Whether it is past its prompt (wants exactly one token per step). */
        boolean decoding();

        /** Tokens it could compute this step: 1 when decoding, else the prompt tokens not yet prefilled. */
        int tokensWanted();

        /** Positions already in its cache, which each token it computes this step attends to (besides the chunk's own). */
        int positions();
    }

    /** No attention-work bound: the token budget alone limits a step. */
    public static final long UNBOUNDED_WORK = Long.MAX_VALUE;

    private final int tokenBudget;
    private final long workBudget;
    /** A prefill chunk that is not the rest of its prompt is a multiple of this many tokens. */
    public static final int ALIGN = 4;
    /** The least token budget: a cut chunk is at least {@link #ALIGN} tokens and leaves at least two. */
    public static final int LEAST_TOKEN_BUDGET = ALIGN + 1;

    private final int maxSequences;
    private final int sequencesPerTenant;
    private final int prefillTokensPerTenant;
    /** Admission clock per tenant; a tenant not in the map was never served (or not lately) and goes first. */
    private final Map<String, Long> lastServed = new HashMap<>();
    private long clock;

    /**
     * @param tokenBudget  most tokens computed per step; at least {@code maxSequences}, so every running
     *                     request can decode each step, and at least {@link #LEAST_TOKEN_BUDGET}
     * @param maxSequences most requests running at once
     * @param tenantShare  share of sequences and prefill tokens one tenant gets while others wait (0, 1]
     */
    public StepPlanner(int tokenBudget, int maxSequences, double tenantShare) {
        this(tokenBudget, UNBOUNDED_WORK, maxSequences, tenantShare);
    }

    /**
     * @param tokenBudget  most tokens computed per step; at least {@code maxSequences}, so every running
     *                     request can decode each step, and at least {@link #LEAST_TOKEN_BUDGET}
     * @param workBudget   most attention work per step ({@link #work}), at least 1; a prefill chunk deep in a
     *                     long context is cut smaller to stay within it, but never below its least chunk
     * @param maxSequences most requests running at once
     * @param tenantShare  share of sequences and prefill tokens one tenant gets while others wait (0, 1]
     */
    public StepPlanner(int tokenBudget, long workBudget, int maxSequences, double tenantShare) {
        if (workBudget < 1) {
            throw new IllegalArgumentException("workBudget must be >= 1, got " + workBudget);
        }
        if (maxSequences < 1 || tokenBudget < Math.max(LEAST_TOKEN_BUDGET, maxSequences)) {
            throw new IllegalArgumentException("need 1 <= maxSequences <= tokenBudget and tokenBudget >= " + LEAST_TOKEN_BUDGET
                    + " (a cut prompt chunk is a multiple of " + ALIGN + " tokens leaving at least two), got "
                    + maxSequences + " and " + tokenBudget);
        }
        if (!(tenantShare > 0 && tenantShare <= 1)) {
            throw new IllegalArgumentException("tenantShare must be in (0, 1], got " + tenantShare);
        }
        this.tokenBudget = tokenBudget;
        this.workBudget = workBudget;
        this.maxSequences = maxSequences;
        this.sequencesPerTenant = Math.max(1, (int) Math.floor(tenantShare * maxSequences));
        this.prefillTokensPerTenant = Math.max(1, (int) Math.floor(tenantShare * tokenBudget));
    }

    /** A planner with one tenant: every request is the same tenant's. */
    public static StepPlanner singleTenant(int tokenBudget, int maxSequences) {
        return new StepPlanner(tokenBudget, maxSequences, 1.0);
    }

    public int tokenBudget() {
        return tokenBudget;
    }

    public long workBudget() {
        return workBudget;
    }

    public int maxSequences() {
        return maxSequences;
    }

    /**
     * Attention work of computing {@code tokens} tokens after {@code positions} cached ones: each token
     * attends to the cached positions and to the chunk's tokens (causal, counted in full), so
     * {@code tokens × (positions + tokens)}. A step's cost beyond its token count grows with this.
     */
    public static long work(int tokens, int positions) {
        return (long) tokens * ((long) positions + tokens);
    }

    /** Most tokens {@code n} with {@link #work}{@code (n, positions) <= work} (0 when not even one fits). */
    static int tokensWithin(long work, int positions) {
        if (work <= 0) {
            return 0;
        }
        double p = positions;
        int most = 1 << 30; // beyond any token budget; keeps work() clear of overflow
        int n = (int) Math.min(most, (long) ((Math.sqrt(p * p + 4.0 * work) - p) / 2));
        while (n > 0 && work(n, positions) > work) {
            n--;
        }
        while (n < most && work(n + 1, positions) <= work) {
            n++;
        }
        return n;
    }

    /**
     * The chunking rule under both bounds: {@link #chunk} of {@code left} tokens within {@code tokens}
     * and within what {@code work} allows at {@code positions} cached positions, but the work bound
     * never cuts below the least chunk ({@link #ALIGN} tokens, or all when at most {@code ALIGN + 1}
     * are left), so a request deep in a long context still makes progress each step it has tokens for.
     */
    static int chunk(int left, int tokens, long work, int positions) {
        int least = left <= ALIGN + 1 ? left : ALIGN;
        return chunk(left, Math.min(tokens, Math.max(least, tokensWithin(work, positions))));
    }

    /**
     * The chunking rule: how many of {@code left} prompt tokens to compute with at most
     * {@code budget} tokens. All of them when they fit; otherwise the most multiple of {@link #ALIGN}
     * within {@code budget} that does not leave exactly one (0 when there is none: the request waits
     * for a step with more room).
     */
    public static int chunk(int left, int budget) {
        if (left <= budget) {
            return left;
        }
        int n = budget - budget % ALIGN;
        if (left - n == 1) {
            n -= ALIGN;
        }
        return Math.max(n, 0);
    }

    /**
     * The tenants to admit one request each from, in order: while there are free places and tokens
     * left in the step after the decode tokens and each prefilling tenant's share of the prefill
     * tokens (so a long prefill of one tenant does not keep another tenant's request out).
     *
     * @param running    the requests running now
     * @param admissible per tenant, how many requests could be admitted now (in first-arrival order)
     */
    public List<String> admissions(List<? extends Planned> running, Map<String, Integer> admissible) {
        Map<String, Integer> runningByTenant = new HashMap<>();
        Map<String, Integer> prefillByTenant = new HashMap<>();
        int budget = tokenBudget;
        for (Planned p : running) {
            runningByTenant.merge(p.tenant(), 1, Integer::sum);
            if (p.decoding()) {
                budget -= p.tokensWanted();
            } else {
                prefillByTenant.merge(p.tenant(), p.tokensWanted(), Integer::sum);
            }
        }
        for (int wanted : prefillByTenant.values()) {
            budget -= Math.min(wanted, prefillTokensPerTenant); // a tenant's prefill takes at most its share once others want tokens
        }
        Map<String, Integer> left = new LinkedHashMap<>();
        admissible.forEach((tenant, n) -> {
            if (n > 0) {
                left.put(tenant, n);
            }
        });
        lastServed.keySet().retainAll(tenants(left, runningByTenant));
        List<String> out = new ArrayList<>();
        int free = maxSequences - running.size();
        while (free > 0 && budget > 0 && !left.isEmpty()) {
            boolean contended = left.size() > 1;
            List<String> order = new ArrayList<>(left.keySet());
            order.sort(Comparator.comparingLong(t -> lastServed.getOrDefault(t, Long.MIN_VALUE)));
            String chosen = null;
            for (String t : order) {
                if (!contended || runningByTenant.getOrDefault(t, 0) < sequencesPerTenant) {
                    chosen = t;
                    break;
                }
            }
            if (chosen == null) {
                chosen = order.get(0); // every waiting tenant is at its share: use the spare capacity anyway
            }
            out.add(chosen);
            runningByTenant.merge(chosen, 1, Integer::sum);
            lastServed.put(chosen, ++clock);
            if (left.merge(chosen, -1, Integer::sum) == 0) {
                left.remove(chosen);
            }
            free--;
            budget--;
        }
        return out;
    }

    private static Set<String> tenants(Map<String, Integer> waiting, Map<String, Integer> running) {
        Set<String> keep = new HashSet<>(waiting.keySet());
        keep.addAll(running.keySet());
        return keep;
    }

    /**
     * Tokens per running request (same order) for the next step: one per decoding request, then
     * prefill chunks ({@link #chunk}) within the rest of the token budget and of the work budget, at
     * most {@code tenantShare} of the token budget per tenant while several tenants prefill, then any
     * budget left to whoever still wants it. A request may get 0 tokens in a step. The work bound is
     * exceeded only by decode tokens and by least chunks (see {@link #chunk(int, int, long, int)}).
     */
    public int[] allocate(List<? extends Planned> running) {
        int[] tokens = new int[running.size()];
        int budget = tokenBudget;
        long work = workBudget;
        Map<String, List<Integer>> prefillByTenant = new LinkedHashMap<>();
        for (int i = 0; i < running.size(); i++) {
            Planned p = running.get(i);
            if (p.decoding()) {
                tokens[i] = 1;
                budget--;
                work -= work(1, p.positions());
            } else if (p.tokensWanted() > 0) {
                prefillByTenant.computeIfAbsent(p.tenant(), t -> new ArrayList<>()).add(i);
            }
        }
        int cap = prefillByTenant.size() > 1 ? prefillTokensPerTenant : Integer.MAX_VALUE;
        for (List<Integer> requests : prefillByTenant.values()) {
            int allowance = Math.min(cap, budget);
            for (int i : requests) {
                Planned p = running.get(i);
                int give = chunk(p.tokensWanted(), allowance, work, p.positions());
                tokens[i] = give;
                allowance -= give;
                budget -= give;
                work -= work(give, p.positions());
            }
        }
        for (List<Integer> requests : prefillByTenant.values()) {
            for (int i : requests) {
                Planned p = running.get(i);
                long own = work(tokens[i], p.positions());
                int total = chunk(p.tokensWanted(), tokens[i] + budget, work + own, p.positions());
                if (total > tokens[i]) {
                    budget -= total - tokens[i];
                    work -= work(total, p.positions()) - own;
                    tokens[i] = total;
                }
            }
        }
        return tokens;
    }
}
