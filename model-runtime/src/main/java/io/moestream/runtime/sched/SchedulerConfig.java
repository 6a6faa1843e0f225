package io.moestream.runtime.sched;

/**
 * Limits of one forward step.
 *
 * @param tokenBudget  most tokens computed per step (decode tokens plus prefill chunks); at least
 *                     {@code maxSequences}, so every running sequence can always decode
 * @param maxSequences most sequences running (admitted) at once
 */
public record SchedulerConfig(int tokenBudget, int maxSequences) {

    public SchedulerConfig {
        if (maxSequences <= 0) {
            throw new IllegalArgumentException("maxSequences must be > 0, got " + maxSequences);
        }
        if (tokenBudget < maxSequences) {
            throw new IllegalArgumentException("tokenBudget " + tokenBudget + " must be >= maxSequences " + maxSequences
                    + " so that every running sequence can decode each step");
        }
    }
}
