package io.moestream.runtime.backend;

/**
 * How one layer's attention weighs the positions: scores are {@code (q . k) * scale}; a query sees
 * only its last {@code window} positions (itself included) when {@code window > 0} (sliding-window
 * layers); {@code sinks} (1, heads) F32, or null, is each head's sink logit, which takes part in the
 * softmax without a value (gpt-oss).
 */
public record AttentionSpec(float scale, int window, WeightHandle sinks) {

    public AttentionSpec {
        if (window < 0) {
            throw new IllegalArgumentException("attention window " + window + " must be >= 0");
        }
    }
}
