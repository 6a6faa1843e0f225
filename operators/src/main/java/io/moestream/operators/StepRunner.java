package io.moestream.operators;

import io.moestream.runtime.model.Engine;
import io.moestream.runtime.model.KvCache;
import java.util.List;

/**
 * Computes one forward step for the {@link InferenceOperator}: for each sequence a run of new
 * tokens (a prefill chunk or one decode token) appended to its cache. The only place the operator
 * calls the engine, so that the runtime's batched {@code Engine.step(StepPlan)} can replace
 * {@link ForwardStepRunner} without touching the operator (a {@link Chunk} is a
 * {@code StepPlan.Sequence}).
 */
interface StepRunner {

    /**
     * One sequence's share of a step.
     *
     * @param cache  its KV-cache; the tokens are appended at {@code cache.length()}
     * @param tokens the new tokens, at least one
     * @param logits whether the logits after the last token are needed
     */
    record Chunk(KvCache cache, int[] tokens, boolean logits) {}

    /**
     * What a step produced, per chunk in order: the logits (null when not asked for or failed) and
     * the failure (null when it ran). A failed chunk's cache is in an unknown state.
     */
    record Outcome(float[][] logits, RuntimeException[] failures) {

        /** Throws the first failure, if any. */
        void throwFailure() {
            for (RuntimeException e : failures) {
                if (e != null) {
                    throw e;
                }
            }
        }
    }

    Outcome step(List<Chunk> chunks);

    /** The runner on what the runtime offers today: one {@link Engine#forward} per chunk. */
    static StepRunner forward(Engine engine) {
        return new ForwardStepRunner(engine);
    }

    /** Runs the chunks one after another with {@link Engine#forward}; a failure stays with its chunk. */
    final class ForwardStepRunner implements StepRunner {

        private final Engine engine;

        ForwardStepRunner(Engine engine) {
            this.engine = engine;
        }

        @Override
        public Outcome step(List<Chunk> chunks) {
            float[][] logits = new float[chunks.size()][];
            RuntimeException[] failures = new RuntimeException[chunks.size()];
            for (int i = 0; i < chunks.size(); i++) {
                Chunk c = chunks.get(i);
                try {
                    float[] l = engine.forward(c.cache(), c.tokens());
                    logits[i] = c.logits() ? l : null;
                } catch (RuntimeException e) {
                    failures[i] = e;
                }
            }
            return new Outcome(logits, failures);
        }
    }
}
