package io.moestream.runtime.kv;

/** Receives the attention probabilities of full-attention heads (what {@link HeadClassifier} measures during prefill). */
@FunctionalInterface
public interface AttentionObserver {

    /**
     * @param probs {@code probs[t]} for {@code t in 0..queryPos} is the softmax weight of position t
     *              (valid only during the call)
     */
    void observe(int layer, int qHead, int queryPos, float[] probs);
}
