package io.moestream.operators;

import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.apache.flink.util.ExceptionUtils;

/**
 * The thread that computes the {@link StepLoop}'s forward steps, one at a time, so that the task
 * thread does the rest of the work (answers, keyed state, admission, input records, timers,
 * checkpoints) meanwhile. Only this thread calls the {@link StepRunner}. Which thread touches which
 * request and cache when, and how the hand-overs order their writes, is the {@link StepLoop}'s.
 */
final class EngineThread implements AutoCloseable {

    /** One forward step: its chunks, and once computed its outcome (or what the runner threw) and how long it took. */
    static final class Step {

        final List<StepRunner.Chunk> chunks;
        private StepRunner.Outcome outcome;
        private Throwable error;
        private long nanos;

        Step(List<StepRunner.Chunk> chunks) {
            this.chunks = chunks;
        }

        /**
         * The outcome, after the step (failures of chunks are in it); rethrows what the runner threw
         * instead (an {@code Error}; anything checked wrapped).
         */
        StepRunner.Outcome outcome() {
            if (error != null) {
                ExceptionUtils.rethrow(error, "the step runner failed");
            }
            return outcome;
        }

        /** Nanoseconds the runner took. */
        long nanos() {
            return nanos;
        }
    }

    private final StepRunner runner;
    private final ExecutorService thread;

    EngineThread(StepRunner runner, String name) {
        this.runner = runner;
        this.thread = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, name);
            t.setDaemon(true);
            return t;
        });
    }

    /**
     * Computes {@code step} on the engine thread, then runs {@code afterStep} there. A step launched
     * from {@code afterStep} runs right after it, on the same thread, without a wake-up.
     *
     * @throws RejectedExecutionException after {@link #close}
     */
    void launch(Step step, Consumer<Step> afterStep) {
        thread.execute(() -> {
            long started = System.nanoTime();
            try {
                step.outcome = runner.step(step.chunks);
            } catch (Throwable t) { // handed to the task thread, which fails the job
                step.error = t;
            }
            step.nanos = System.nanoTime() - started;
            afterStep.accept(step);
        });
    }

    /**
     * Stops the thread when the steps it has are done: the one in flight, and one it launched
     * before it saw the loop stop (the loop is stopped first, so it launches no more).
     */
    @Override
    public void close() {
        thread.shutdown();
        boolean interrupted = false;
        try {
            while (true) {
                try {
                    if (thread.awaitTermination(1, TimeUnit.SECONDS)) {
                        return;
                    }
                } catch (InterruptedException e) {
                    interrupted = true; // the runner must not be closed under a running step: wait on
                }
            }
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
