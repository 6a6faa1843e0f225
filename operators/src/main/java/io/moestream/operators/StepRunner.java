package io.moestream.operators;

import io.moestream.runtime.model.Engine;
import io.moestream.runtime.model.KvCache;
import io.moestream.runtime.model.StepPlan;
import io.moestream.runtime.model.StepResult;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Computes one forward step for the {@link InferenceOperator}: for each sequence a run of new
 * tokens (a prefill chunk or one decode token) appended to its cache. The only place the operator
 * calls the engine: on the CPU the job uses {@link #batched} ({@link Engine#step}), {@link #forward}
 * is the one-at-a-time reference; on a GPU {@link BackendStepRunner} (see {@link RunnerSelection}).
 *
 * <p>A runner may keep a cache's new positions elsewhere (the GPU's KV pool) until
 * {@link #detach}: the operator detaches a cache before it reads its length or stores it, and when
 * its request ends.
 */
interface StepRunner extends AutoCloseable {

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

    /**
     * The operator is done with {@code cache} for now: with {@code writeBack} the cache holds every
     * position its steps appended when this returns; without, it may not (it is discarded). The
     * engine runners write into the cache during the step, so this is a no-op for them.
     */
    default void detach(KvCache cache, boolean writeBack) {}

    /** Frees what the runner holds (a backend's memory). */
    @Override
    default void close() {}

    /** One {@link Engine#forward} per chunk: the reference the batched runner is tested against. */
    static StepRunner forward(Engine engine) {
        return new ForwardStepRunner(engine);
    }

    /** All chunks as one batched {@link Engine#step}: each weight matrix is read once per step. */
    static StepRunner batched(Engine engine) {
        return new BatchedStepRunner(engine);
    }

    /**
     * Runs the chunks as one {@link Engine#step}. The engine checks every sequence before it writes
     * any cache, so when it refuses the plan (an {@link IllegalArgumentException}: a chunk that does
     * not fit its context, a bad token id) the chunks are retried one by one and only the bad one
     * fails. Any other failure leaves every cache in an unknown state and fails them all.
     */
    final class BatchedStepRunner implements StepRunner {

        private final Engine engine;
        private final ForwardStepRunner oneByOne;

        BatchedStepRunner(Engine engine) {
            this.engine = engine;
            this.oneByOne = new ForwardStepRunner(engine);
        }

        @Override
        public Outcome step(List<Chunk> chunks) {
            List<StepPlan.Sequence> sequences = new ArrayList<>(chunks.size());
            for (Chunk c : chunks) {
                sequences.add(new StepPlan.Sequence(c.cache(), c.tokens(), c.logits()));
            }
            float[][] logits = new float[chunks.size()][];
            RuntimeException[] failures = new RuntimeException[chunks.size()];
            StepResult result;
            try {
                result = engine.step(new StepPlan(sequences));
            } catch (IllegalArgumentException refused) {
                return oneByOne.step(chunks);
            } catch (RuntimeException e) {
                Arrays.fill(failures, e);
                return new Outcome(logits, failures);
            }
            for (int i = 0; i < chunks.size(); i++) {
                logits[i] = result.logits(i);
            }
            return new Outcome(logits, failures);
        }
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
