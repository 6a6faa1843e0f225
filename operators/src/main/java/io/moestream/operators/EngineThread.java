package io.moestream.operators;

import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The thread that computes the {@link StepLoop}'s forward steps, so that the task thread does the
 * rest of a step's work (answers, keyed state, admission, input records, timers, checkpoints) while
 * the engine computes. One step at a time. While a step is in flight only this thread touches the
 * {@link StepRunner} and the caches and requests of the step's chunks; otherwise only the task
 * thread does. The hand-overs ({@link #launch}, {@link Step#await}) order every write of one
 * thread before the other's reads.
 */
final class EngineThread implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(EngineThread.class);

    /** One forward step: its chunks, and once computed its outcome and how long it took. */
    static final class Step {

        final List<StepRunner.Chunk> chunks;
        private final CountDownLatch done = new CountDownLatch(1);
        private StepRunner.Outcome outcome;
        private Throwable error;
        private long nanos;

        Step(List<StepRunner.Chunk> chunks) {
            this.chunks = chunks;
        }

        /**
         * Waits until the step is computed (at most one step) and returns its outcome; rethrows what
         * the runner threw instead of returning (an {@code Error}: failures of chunks are in the outcome).
         */
        StepRunner.Outcome await() throws InterruptedException {
            done.await();
            if (error instanceof RuntimeException e) {
                throw e;
            }
            if (error instanceof Error e) {
                throw e;
            }
            return outcome;
        }

        /** Nanoseconds the runner took (on the engine thread after the step, or after {@link #await}). */
        long nanos() {
            return nanos;
        }

        /** The outcome, on the engine thread after the step (elsewhere use {@link #await}). */
        StepRunner.Outcome outcome() {
            return outcome;
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
     * Computes {@code step} on the engine thread, then runs {@code afterStep} there (the requests
     * sample) before the step counts as done; {@code whenDone} runs after that (it hands the step back
     * to the task thread's mailbox). The caller launches the next step only after this one's
     * {@link Step#await} returned.
     */
    void launch(Step step, Consumer<Step> afterStep, Runnable whenDone) {
        thread.execute(() -> {
            long started = System.nanoTime();
            try {
                step.outcome = runner.step(step.chunks);
                step.nanos = System.nanoTime() - started;
                afterStep.accept(step);
            } catch (Throwable t) { // handed to the task thread, which fails the job
                step.error = t;
            }
            step.done.countDown();
            try {
                whenDone.run();
            } catch (RuntimeException e) { // the mailbox closed: the operator is closing and waits for this step
                LOG.debug("a step finished after its operator closed", e);
            }
        });
    }

    /** Waits for the step in flight, if any (at most one step), and stops the thread. */
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
