package io.moestream.operators;

import static org.assertj.core.api.Assertions.assertThat;

import io.moestream.schemas.ErrorCode;
import java.util.ArrayList;
import java.util.List;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.Gauge;
import org.apache.flink.metrics.Histogram;
import org.apache.flink.metrics.Meter;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.metrics.SimpleCounter;
import org.apache.flink.metrics.groups.UnregisteredMetricsGroup;
import org.junit.jupiter.api.Test;

class InferenceMetricsTest {

    /** Records the names of what is registered, with the subgroup as a prefix. */
    private static final class RecordingGroup extends UnregisteredMetricsGroup {
        final List<String> names;
        final String prefix;

        RecordingGroup(List<String> names, String prefix) {
            this.names = names;
            this.prefix = prefix;
        }

        @Override
        public Counter counter(String name) {
            return counter(name, new SimpleCounter());
        }

        @Override
        public <C extends Counter> C counter(String name, C counter) {
            names.add(prefix + name);
            return counter;
        }

        @Override
        public <T, G extends Gauge<T>> G gauge(String name, G gauge) {
            names.add(prefix + name);
            return gauge;
        }

        @Override
        public <H extends Histogram> H histogram(String name, H histogram) {
            names.add(prefix + name);
            return histogram;
        }

        @Override
        public <M extends Meter> M meter(String name, M meter) {
            names.add(prefix + name);
            return meter;
        }

        @Override
        public MetricGroup addGroup(String name) {
            return new RecordingGroup(names, prefix + name + ".");
        }
    }

    @Test
    void registersEveryMetricOnceAndOneErrorCounterPerCode() {
        List<String> names = new ArrayList<>();
        InferenceMetrics metrics = new InferenceMetrics(new RecordingGroup(names, ""), () -> 1, () -> 2, () -> 3,
                () -> 4, () -> 5);
        assertThat(names).doesNotHaveDuplicates().contains("queueLength", "pendingRequests", "maxPendingObserved",
                "inFlightSequences", "kvStateBytes", "kvBlocksWritten", "steps", "stepTokens", "stepSequences", "prefillTokens",
                "decodeTokens", "prefillTokensPerSecond", "decodeTokensPerSecond", "cacheHitTokens",
                "timeToFirstTokenMs", "latencyMs", "generations", "contextsReady", "errorsTotal");
        for (ErrorCode code : ErrorCode.values()) {
            assertThat(names).contains("errors." + code.name());
        }

        metrics.error(ErrorCode.DUPLICATE_REQUEST);
        metrics.step(10, 3, 8, 2);
        assertThat(metrics.errors(ErrorCode.DUPLICATE_REQUEST)).isEqualTo(1);
        assertThat(metrics.errors(ErrorCode.MODEL_ERROR)).isZero();
        assertThat(metrics.prefillTokens.getCount()).isEqualTo(8);
        assertThat(metrics.stepTokens.getStatistics().getMax()).isEqualTo(10);
    }

    @Test
    void progressLineSummarisesTheInterval() {
        ProgressStats.Snapshot before = new ProgressStats.Snapshot(0, 10, 1, 1, 0, 0, 0, 0, 0, 0, 0);
        ProgressStats.Snapshot now = new ProgressStats.Snapshot(30, 20, 2, 1, 5_000, 400, 7, 3, 1_000, 5_000,
                2_000_000_000L);
        assertThat(ProgressStats.line(before, now)).isEqualTo("progress: 20 answered (+10, 5.0/s), 2 errors,"
                + " 1 contexts | queue 7, in flight 3 | prefill 2500 tok/s, decode 200 tok/s | ttft 100 ms, latency 500 ms");
    }
}
