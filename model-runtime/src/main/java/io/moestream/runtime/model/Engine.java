package io.moestream.runtime.model;

import java.util.List;

/**
 * Runs the forward pass. Not thread-safe: one engine per thread (per Flink slot); it owns its
 * activation buffers.
 */
public final class Engine {
    // STUB: implemented by the runtime work; the signatures below are the contract.

    public Engine(Model model) {
        throw new IllegalStateException("Engine not implemented yet");
    }

    public Model model() {
        throw new IllegalStateException("Engine not implemented yet");
    }

    /**
     * Appends {@code tokens} to {@code cache} (a prefill) and returns the logits (vocab size) at the
     * last of them.
     */
    public float[] forward(KvCache cache, int[] tokens) {
        throw new IllegalStateException("Engine not implemented yet");
    }

    /**
     * Runs many requests as one batch: each prompt is prefilled, then all sequences decode in
     * lockstep, one token each per step, until each finishes. Results are in request order and equal
     * to running each request alone.
     */
    public List<GenerationResult> generate(List<GenerationRequest> requests) {
        throw new IllegalStateException("Engine not implemented yet");
    }
}
