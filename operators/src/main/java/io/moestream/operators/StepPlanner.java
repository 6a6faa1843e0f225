package io.moestream.operators;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Plans each step of the {@link InferenceOperator}'s continuous batching: which waiting requests
 * join ({@link #admissions}) and how many tokens each running sequence computes
 * ({@link #allocate}). It only plans: it never sees caches, logits or Flink state (vLLM's split of
 * {@code schedule()} from the model runner; the runtime's {@code sched.Scheduler} is the same idea
 * without tenants).
 *
 * <p>Rules, per step:
 * <ul>
 *   <li>every decoding sequence gets one token; the rest of {@code tokenBudget} goes to prefill
 *       chunks, so a long prompt is prefilled over several steps while others keep decoding;</li>
 *   <li>admission is round-robin over tenants, least recently served first, while fewer than
 *       {@code maxSequences} run;</li>
 *   <li>fairness: while more than one tenant wants work, a tenant gets at most
 *       {@code tenantShare} of the sequences (at admission) and of the prefill tokens (per step);
 *       capacity nobody else wants is not withheld. Running sequences are never preempted, so a
 *       newcomer waits at most until the first running sequence finishes.</li>
 * </ul>
 * Not thread-safe; one per operator instance.
 */
final class StepPlanner {

    /** What the planner needs to know of a running sequence. */
    interface Planned {
        String tenant();

        /** Whether it is past its prompt (wants exactly one token per step). */
        boolean decoding();

        /** Tokens it could compute this step: 1 when decoding, else the prompt tokens not yet prefilled. */
        int tokensWanted();
    }

    private final int tokenBudget;
    private final int maxSequences;
    private final int sequencesPerTenant;
    private final int prefillTokensPerTenant;
    /** Admission clock per tenant; a tenant not in the map was never served (or not lately) and goes first. */
    private final Map<String, Long> lastServed = new HashMap<>();
    private long clock;

    StepPlanner(int tokenBudget, int maxSequences, double tenantShare) {
        if (maxSequences < 1 || tokenBudget < maxSequences) {
            throw new IllegalArgumentException("need 1 <= maxSequences <= tokenBudget, got " + maxSequences + " and " + tokenBudget);
        }
        this.tokenBudget = tokenBudget;
        this.maxSequences = maxSequences;
        this.sequencesPerTenant = Math.max(1, (int) Math.floor(tenantShare * maxSequences));
        this.prefillTokensPerTenant = Math.max(1, (int) Math.floor(tenantShare * tokenBudget));
    }

    /**
     * The tenants to admit one request each from, in order.
     *
     * @param running    the sequences running now
     * @param admissible per tenant, how many requests could be admitted now (in first-arrival order)
     */
    List<String> admissions(List<? extends Planned> running, Map<String, Integer> admissible) {
        Map<String, Integer> runningByTenant = new HashMap<>();
        int budget = tokenBudget;
        for (Planned p : running) {
            runningByTenant.merge(p.tenant(), 1, Integer::sum);
            budget -= p.tokensWanted();
        }
        Map<String, Integer> left = new LinkedHashMap<>();
        admissible.forEach((tenant, n) -> {
            if (n > 0) {
                left.put(tenant, n);
            }
        });
        lastServed.keySet().retainAll(pruneSet(left, runningByTenant));
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

    private static Set<String> pruneSet(Map<String, Integer> waiting, Map<String, Integer> running) {
        Set<String> keep = new HashSet<>(waiting.keySet());
        keep.addAll(running.keySet());
        return keep;
    }

    /**
     * Tokens per running sequence (same order) for the next step: one per decoding sequence, then
     * prefill chunks within the rest of the budget, at most {@code tenantShare} of the budget per
     * tenant while several tenants prefill, then any budget left to whoever still wants it.
     */
    int[] allocate(List<? extends Planned> running) {
        int[] tokens = new int[running.size()];
        int budget = tokenBudget;
        Map<String, List<Integer>> prefillByTenant = new LinkedHashMap<>();
        for (int i = 0; i < running.size(); i++) {
            Planned p = running.get(i);
            if (p.decoding()) {
                tokens[i] = 1;
                budget--;
            } else if (p.tokensWanted() > 0) {
                prefillByTenant.computeIfAbsent(p.tenant(), t -> new ArrayList<>()).add(i);
            }
        }
        int cap = prefillByTenant.size() > 1 ? prefillTokensPerTenant : Integer.MAX_VALUE;
        for (List<Integer> sequences : prefillByTenant.values()) {
            int allowance = Math.min(cap, budget);
            for (int i : sequences) {
                int give = Math.min(running.get(i).tokensWanted(), allowance);
                tokens[i] += give;
                allowance -= give;
                budget -= give;
            }
        }
        for (List<Integer> sequences : prefillByTenant.values()) {
            for (int i : sequences) {
                int give = Math.min(running.get(i).tokensWanted() - tokens[i], budget);
                tokens[i] += give;
                budget -= give;
            }
        }
        return tokens;
    }
}
