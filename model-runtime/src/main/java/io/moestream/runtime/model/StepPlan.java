package io.moestream.runtime.model;

import java.util.List;

/**
 * What one {@link Engine#step} computes: for each sequence a run of new tokens (a prefill chunk or
 * a single decode token) to append to its cache, and whether it needs the logits after the last
 * of them. Each cache appears at most once.
 *
 * @param sequences the sequences of this step, in the order the result reports them
 */
public record StepPlan(List<Sequence> sequences) {

    /**
     * One sequence's share of the step.
     *
     * @param cache  its KV cache; the tokens are appended at {@code cache.length()}
     * @param tokens the new tokens, at least one
     * @param logits whether to compute the logits after the last token
     */
    public record Sequence(KvCache cache, int[] tokens, boolean logits) {}

    public StepPlan {
        sequences = List.copyOf(sequences);
    }

    public static StepPlan of(Sequence... sequences) {
        return new StepPlan(List.of(sequences));
    }

    /** Tokens computed by the step (rows of its activation matrices). */
    public int tokens() {
        int n = 0;
        for (Sequence s : sequences) {
            n += s.tokens().length;
        }
        return n;
    }
}
