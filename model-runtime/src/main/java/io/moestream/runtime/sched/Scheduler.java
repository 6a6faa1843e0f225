package io.moestream.runtime.sched;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Plans forward steps for continuous batching with chunked prefill, as vLLM's scheduler does: it
 * only decides which sequences compute how many tokens ({@link #schedule}) and learns the outcome
 * ({@link #update}); it never sees tensors, caches or logits.
 *
 * <p>Per step, within {@link SchedulerConfig#tokenBudget()} tokens: first one token for every
 * running sequence that is decoding, then the rest of running prefills, then new sequences
 * admitted first-come-first-served while fewer than {@link SchedulerConfig#maxSequences()} run. A
 * prompt that does not fit the remaining budget is prefilled in chunks over several steps, none of
 * them a lone first or last token when that can be avoided (the engine sums a one-token chunk in
 * decode order, so a prompt's bits would depend on where it was cut). Since
 * the budget is at least the number of running sequences, every running sequence progresses each
 * step and admission order is arrival order, so nobody starves. Not thread-safe.
 */
public final class Scheduler {

    private static final class Sequence {
        final int id;
        final int promptLength;
        int known;    // tokens to compute in total so far: prompt + sampled tokens fed back
        int computed; // tokens already computed (in the cache)

        Sequence(int id, int promptLength) {
            this.id = id;
            this.promptLength = promptLength;
            this.known = promptLength;
        }

        boolean decoding() {
            return computed >= promptLength;
        }
    }

    private final SchedulerConfig config;
    private final Deque<Sequence> waiting = new ArrayDeque<>();
    private final List<Sequence> running = new ArrayList<>(); // arrival order
    private final Map<Integer, Sequence> byId = new HashMap<>();
    private int nextId;

    public Scheduler(SchedulerConfig config) {
        this.config = config;
    }

    /** Queues a sequence with {@code promptLength} tokens to prefill; returns its id (0, 1, 2, ... in call order). */
    public int add(int promptLength) {
        if (promptLength <= 0) {
            throw new IllegalArgumentException("a sequence needs at least one prompt token, got " + promptLength);
        }
        Sequence s = new Sequence(nextId++, promptLength);
        waiting.add(s);
        byId.put(s.id, s);
        return s.id;
    }

    /** Whether any sequence is waiting or running. */
    public boolean hasWork() {
        return !byId.isEmpty();
    }

    /** Sequences admitted and not finished. */
    public int running() {
        return running.size();
    }

    /** Sequences not yet admitted. */
    public int waiting() {
        return waiting.size();
    }

    /** The next step. Empty only when there is no work. */
    public Schedule schedule() {
        int budget = config.tokenBudget();
        List<Schedule.Chunk> chunks = new ArrayList<>();
        for (Sequence s : running) {
            if (s.decoding() && s.known > s.computed && budget > 0) {
                budget -= take(s, budget, chunks);
            }
        }
        for (Sequence s : running) {
            if (!s.decoding() && budget > 0) {
                budget -= take(s, budget, chunks);
            }
        }
        while (!waiting.isEmpty() && running.size() < config.maxSequences() && budget > 0) {
            if (budget == 1 && waiting.peek().promptLength > 1 && !chunks.isEmpty()) {
                break; // nor starts with a lone token while the step has other work: next step has room
            }
            Sequence s = waiting.poll();
            running.add(s);
            budget -= take(s, budget, chunks);
        }
        return new Schedule(chunks);
    }

    private static int take(Sequence s, int budget, List<Schedule.Chunk> chunks) {
        int left = s.known - s.computed;
        int n = Math.min(left, budget);
        if (!s.decoding() && left - n == 1 && n > 2) {
            n--; // a one-token last prompt chunk would take the decode kernels (other float order), see Engine
        }
        chunks.add(new Schedule.Chunk(s.id, s.computed, n, s.computed + n == s.known));
        return n;
    }

    /**
     * Records a computed step. Every chunk's tokens are now computed. A sequence whose chunk
     * {@linkplain Schedule.Chunk#reachesEnd() reached its end} either finished (it is in
     * {@code finished}) or got one sampled token to feed next. Ids in {@code finished} that were not
     * in the step (a cancelled sequence) are dropped as well.
     */
    public void update(Schedule done, Collection<Integer> finished) {
        for (Schedule.Chunk c : done.chunks()) {
            Sequence s = byId.get(c.sequence());
            if (s == null || s.computed != c.start()) {
                throw new IllegalStateException("schedule chunk " + c + " does not match the state of sequence " + c.sequence());
            }
            s.computed += c.length();
            if (c.reachesEnd() && !finished.contains(s.id)) {
                s.known++;
            }
        }
        for (int id : finished) {
            Sequence s = byId.remove(id);
            if (s != null) {
                running.remove(s);
                waiting.remove(s);
            }
        }
    }
}
