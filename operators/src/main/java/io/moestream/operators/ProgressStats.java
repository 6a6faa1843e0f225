package io.moestream.operators;

import java.io.Closeable;
import java.io.PrintStream;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAdder;

/**
 * JVM-wide progress of the inference operators running in this JVM (the local MiniCluster of
 * {@code demo} and {@code run}), for a one-line summary every few seconds. Thread-safe; the
 * operators add to it, {@link #startPrinter} reads it. On a real cluster use the Flink metrics
 * ({@code docs/operators.md}); these numbers only cover the local JVM.
 */
public final class ProgressStats {

    static final LongAdder PROMPTS = new LongAdder();
    static final LongAdder GENERATIONS = new LongAdder();
    static final LongAdder ERRORS = new LongAdder();
    static final LongAdder CONTEXTS = new LongAdder();
    static final LongAdder PREFILL_TOKENS = new LongAdder();
    static final LongAdder DECODE_TOKENS = new LongAdder();
    static final LongAdder PENDING = new LongAdder();
    static final LongAdder IN_FLIGHT = new LongAdder();
    static final LongAdder TTFT_MILLIS_SUM = new LongAdder();
    static final LongAdder LATENCY_MILLIS_SUM = new LongAdder();
    static final LongAdder STEPS = new LongAdder();
    /** Sequences summed over steps: with {@link #STEPS}, the mean sequences per step (batch size). */
    static final LongAdder STEP_SEQUENCES = new LongAdder();
    /** Nanoseconds the operators' engine threads computed forward steps. */
    static final LongAdder FORWARD_NANOS = new LongAdder();
    /** Nanoseconds the operators' engine threads waited for their task threads' hand-over of admitted work. */
    static final LongAdder HANDOVER_WAIT_NANOS = new LongAdder();
    /** The longest forward step of any inference operator in this JVM. */
    static final java.util.concurrent.atomic.AtomicLong LONGEST_STEP_NANOS = new java.util.concurrent.atomic.AtomicLong();
    /** The longest mailbox action of any inference operator's step loop in this JVM. */
    static final java.util.concurrent.atomic.AtomicLong LONGEST_ACTION_NANOS = new java.util.concurrent.atomic.AtomicLong();

    private ProgressStats() {}

    /** A snapshot of the counters. */
    public record Snapshot(long prompts, long generations, long errors, long contexts, long prefillTokens,
            long decodeTokens, long pending, long inFlight, long ttftMillisSum, long latencyMillisSum, long nanoTime) {}

    public static Snapshot snapshot() {
        return new Snapshot(PROMPTS.sum(), GENERATIONS.sum(), ERRORS.sum(), CONTEXTS.sum(), PREFILL_TOKENS.sum(),
                DECODE_TOKENS.sum(), PENDING.sum(), IN_FLIGHT.sum(), TTFT_MILLIS_SUM.sum(), LATENCY_MILLIS_SUM.sum(),
                System.nanoTime());
    }

    /** The longest forward step (computed on an operator's engine thread) since {@link #resetLongestStep}. */
    public static long longestStepNanos() {
        return LONGEST_STEP_NANOS.get();
    }

    /**
     * The longest mailbox action of a step loop (launching a step, admission, answers and
     * stores; what an input record or checkpoint barrier may wait for) since {@link #resetLongestStep}.
     */
    public static long longestLoopActionNanos() {
        return LONGEST_ACTION_NANOS.get();
    }

    /** Steps run by the inference operators of this JVM. */
    public static long steps() {
        return STEPS.sum();
    }

    /** Sequences computed in those steps, summed over steps. */
    public static long stepSequences() {
        return STEP_SEQUENCES.sum();
    }

    /** Nanoseconds the engine threads of this JVM spent computing forward steps. */
    public static long forwardNanos() {
        return FORWARD_NANOS.sum();
    }

    /**
     * Nanoseconds the engine threads of this JVM waited, with a step computed, for their task
     * thread to hand over the work admitted while it computed (the task thread more than a step behind).
     */
    public static long handoverWaitNanos() {
        return HANDOVER_WAIT_NANOS.sum();
    }

    public static void resetLongestStep() {
        LONGEST_STEP_NANOS.set(0);
        LONGEST_ACTION_NANOS.set(0);
    }

    /**
     * One line comparing two snapshots, e.g. {@code progress: 120 answered (+12, 2.4/s), 1 errors,
     * 2 contexts | queue 5, in flight 4 | prefill 830 tok/s, decode 96 tok/s | ttft 120 ms, latency 900 ms}.
     */
    public static String line(Snapshot before, Snapshot now) {
        double seconds = Math.max(1e-9, (now.nanoTime() - before.nanoTime()) / 1e9);
        long answered = now.generations() - before.generations();
        return String.format(Locale.ROOT,
                "progress: %d answered (+%d, %.1f/s), %d errors, %d contexts | queue %d, in flight %d"
                        + " | prefill %.0f tok/s, decode %.0f tok/s | ttft %s, latency %s",
                now.generations(), answered, answered / seconds, now.errors(), now.contexts(), now.pending(),
                now.inFlight(), (now.prefillTokens() - before.prefillTokens()) / seconds,
                (now.decodeTokens() - before.decodeTokens()) / seconds,
                average(now.ttftMillisSum() - before.ttftMillisSum(), answered),
                average(now.latencyMillisSum() - before.latencyMillisSum(), answered));
    }

    private static String average(long sum, long n) {
        return n == 0 ? "-" : (sum / n) + " ms";
    }

    /**
     * Prints {@link #line} to {@code out} every {@code every} from a daemon thread, until closed; a
     * zero or negative interval prints nothing.
     *
     * <pre>{@code
     * try (Closeable progress = ProgressStats.startPrinter(System.out, Duration.ofSeconds(5))) {
     *     job.getJobExecutionResult().get();
     * }
     * }</pre>
     */
    public static Closeable startPrinter(PrintStream out, Duration every) {
        if (every.isZero() || every.isNegative()) {
            return () -> {};
        }
        ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "moestream-progress");
            t.setDaemon(true);
            return t;
        });
        Snapshot[] last = {snapshot()};
        long millis = Math.max(1, every.toMillis());
        timer.scheduleAtFixedRate(() -> {
            Snapshot now = snapshot();
            out.println(line(last[0], now));
            last[0] = now;
        }, millis, millis, TimeUnit.MILLISECONDS);
        return timer::shutdownNow;
    }
}
