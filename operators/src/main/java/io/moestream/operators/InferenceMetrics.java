package io.moestream.operators;

import io.moestream.schemas.ErrorCode;
import java.util.EnumMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.Gauge;
import org.apache.flink.metrics.Histogram;
import org.apache.flink.metrics.MeterView;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.runtime.metrics.DescriptiveStatisticsHistogram;

/**
 * The {@link InferenceOperator}'s Flink metrics (names are constants, listed in
 * {@code docs/operators.md}), mirrored into the JVM-wide {@link ProgressStats}.
 */
final class InferenceMetrics {

    static final String QUEUE_LENGTH = "queueLength";
    static final String PENDING_REQUESTS = "pendingRequests";
    static final String MAX_PENDING_OBSERVED = "maxPendingObserved";
    static final String IN_FLIGHT = "inFlightSequences";
    static final String KV_STATE_BYTES = "kvStateBytes";
    static final String KV_BLOCKS_WRITTEN = "kvBlocksWritten";
    static final String STEPS = "steps";
    static final String STEP_TOKENS = "stepTokens";
    static final String STEP_SEQUENCES = "stepSequences";
    static final String LONGEST_STEP = "longestStepMs";
    static final String LONGEST_LOOP_ACTION = "longestLoopActionMs";
    static final String HANDOVER_WAIT = "engineWaitedForHandoverMs";
    static final String PREFILL_TOKENS = "prefillTokens";
    static final String DECODE_TOKENS = "decodeTokens";
    static final String PREFILL_RATE = "prefillTokensPerSecond";
    static final String DECODE_RATE = "decodeTokensPerSecond";
    static final String CACHE_HIT_TOKENS = "cacheHitTokens";
    static final String TTFT = "timeToFirstTokenMs";
    static final String LATENCY = "latencyMs";
    static final String GENERATIONS = "generations";
    static final String CONTEXTS = "contextsReady";
    static final String ERRORS_TOTAL = "errorsTotal";
    /** Subgroup with one counter per {@link ErrorCode}. */
    static final String ERRORS_GROUP = "errors";

    private static final int HISTOGRAM_WINDOW = 1024;

    final Counter kvBlocksWritten;
    final Counter steps;
    final Histogram stepTokens;
    final Histogram stepSequences;
    private volatile long longestStepNanos;
    private long longestActionNanos;
    private final AtomicLong handoverWaitNanos = new AtomicLong();
    final Counter prefillTokens;
    final Counter decodeTokens;
    final Counter cacheHitTokens;
    final Histogram ttft;
    final Histogram latency;
    final Counter generations;
    final Counter contexts;
    final Counter errorsTotal;
    private final Map<ErrorCode, Counter> errors = new EnumMap<>(ErrorCode.class);

    InferenceMetrics(MetricGroup group, LongSupplier queueLength, LongSupplier pending, LongSupplier maxPending,
            LongSupplier inFlight, LongSupplier kvBytes) {
        group.gauge(QUEUE_LENGTH, (Gauge<Long>) queueLength::getAsLong);
        group.gauge(PENDING_REQUESTS, (Gauge<Long>) pending::getAsLong);
        group.gauge(MAX_PENDING_OBSERVED, (Gauge<Long>) maxPending::getAsLong);
        group.gauge(IN_FLIGHT, (Gauge<Long>) inFlight::getAsLong);
        group.gauge(KV_STATE_BYTES, (Gauge<Long>) kvBytes::getAsLong);
        kvBlocksWritten = group.counter(KV_BLOCKS_WRITTEN);
        steps = group.counter(STEPS);
        stepTokens = group.histogram(STEP_TOKENS, new DescriptiveStatisticsHistogram(HISTOGRAM_WINDOW));
        stepSequences = group.histogram(STEP_SEQUENCES, new DescriptiveStatisticsHistogram(HISTOGRAM_WINDOW));
        group.gauge(LONGEST_STEP, (Gauge<Long>) () -> longestStepNanos / 1_000_000);
        group.gauge(LONGEST_LOOP_ACTION, (Gauge<Long>) () -> longestActionNanos / 1_000_000);
        group.gauge(HANDOVER_WAIT, (Gauge<Long>) () -> handoverWaitNanos.get() / 1_000_000);
        prefillTokens = group.counter(PREFILL_TOKENS);
        decodeTokens = group.counter(DECODE_TOKENS);
        group.meter(PREFILL_RATE, new MeterView(prefillTokens));
        group.meter(DECODE_RATE, new MeterView(decodeTokens));
        cacheHitTokens = group.counter(CACHE_HIT_TOKENS);
        ttft = group.histogram(TTFT, new DescriptiveStatisticsHistogram(HISTOGRAM_WINDOW));
        latency = group.histogram(LATENCY, new DescriptiveStatisticsHistogram(HISTOGRAM_WINDOW));
        generations = group.counter(GENERATIONS);
        contexts = group.counter(CONTEXTS);
        errorsTotal = group.counter(ERRORS_TOTAL);
        MetricGroup byCode = group.addGroup(ERRORS_GROUP);
        for (ErrorCode code : ErrorCode.values()) {
            errors.put(code, byCode.counter(code.name()));
        }
    }

    void step(int tokens, int sequences, int prefill, int decode) {
        steps.inc();
        stepTokens.update(tokens);
        stepSequences.update(sequences);
        prefillTokens.inc(prefill);
        decodeTokens.inc(decode);
        ProgressStats.PREFILL_TOKENS.add(prefill);
        ProgressStats.DECODE_TOKENS.add(decode);
        ProgressStats.STEPS.increment();
        ProgressStats.STEP_SEQUENCES.add(sequences);
    }

    /** A forward step took {@code nanos}; on the engine thread. */
    void stepTook(long nanos) {
        longestStepNanos = Math.max(longestStepNanos, nanos);
        ProgressStats.LONGEST_STEP_NANOS.accumulateAndGet(nanos, Math::max);
        ProgressStats.FORWARD_NANOS.add(nanos);
    }

    /** The engine thread waited {@code nanos} for the task thread's hand-over of admitted work. */
    void handoverWaited(long nanos) {
        handoverWaitNanos.addAndGet(nanos);
        ProgressStats.HANDOVER_WAIT_NANOS.add(nanos);
    }

    /** A mailbox action of the step loop (answers and stores, admission, launching a step when the engine thread is idle) took {@code nanos}. */
    void actionTook(long nanos) {
        longestActionNanos = Math.max(longestActionNanos, nanos);
        ProgressStats.LONGEST_ACTION_NANOS.accumulateAndGet(nanos, Math::max);
    }

    void generation(int cachedTokens, long ttftMillis, long latencyMillis) {
        generations.inc();
        cacheHitTokens.inc(cachedTokens);
        ttft.update(ttftMillis);
        latency.update(latencyMillis);
        ProgressStats.GENERATIONS.increment();
        ProgressStats.TTFT_MILLIS_SUM.add(ttftMillis);
        ProgressStats.LATENCY_MILLIS_SUM.add(latencyMillis);
    }

    void context() {
        contexts.inc();
        ProgressStats.CONTEXTS.increment();
    }

    void error(ErrorCode code) {
        errorsTotal.inc();
        errors.get(code).inc();
        ProgressStats.ERRORS.increment();
    }

    long errors(ErrorCode code) {
        return errors.get(code).getCount();
    }
}
