package io.moestream.benchmarks;

import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.Metric;
import org.apache.flink.metrics.MetricConfig;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.metrics.reporter.MetricReporter;
import org.apache.flink.metrics.reporter.MetricReporterFactory;

import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * Batch sizes of the pipeline's inference operator, read from outside the operator: a Flink metric
 * reporter (registered with {@code metrics.reporter.probe.factory.class}) keeps the operator's
 * {@code batches} and {@code generations} counters, and a thread polls them every millisecond.
 * The operator counts a batch, then its generations, so the generations counted between two batch
 * increments are one batch's size. A batch runs for tens of milliseconds at least, so the poll sees
 * every increment; requests answered with an error are not counted.
 */
public final class BatchSizeProbe implements MetricReporter {

    private static final List<Counter> BATCHES = new CopyOnWriteArrayList<>();
    private static final List<Counter> GENERATIONS = new CopyOnWriteArrayList<>();
    private static final List<Integer> SIZES = new CopyOnWriteArrayList<>();
    private static volatile Thread poller;

    /** Flink's factory for the probe. */
    public static final class Factory implements MetricReporterFactory {
        @Override
        public MetricReporter createMetricReporter(Properties properties) {
            return new BatchSizeProbe();
        }
    }

    @Override
    public void open(MetricConfig config) {}

    @Override
    public void close() {}

    @Override
    public void notifyOfAddedMetric(Metric metric, String name, MetricGroup group) {
        String operator = group.getAllVariables().getOrDefault("<operator_name>", "");
        if (!(metric instanceof Counter counter) || !operator.startsWith("inference")) {
            return;
        }
        if (name.equals("batches")) {
            BATCHES.add(counter);
        } else if (name.equals("generations")) {
            GENERATIONS.add(counter);
        }
    }

    @Override
    public void notifyOfRemovedMetric(Metric metric, String name, MetricGroup group) {}

    /** Starts polling (forgetting earlier sizes); call once the counters exist and before the measured load. */
    static synchronized void start() {
        SIZES.clear();
        Thread t = new Thread(BatchSizeProbe::poll, "batch-size-probe");
        t.setDaemon(true);
        poller = t;
        t.start();
    }

    /** Stops polling; the sizes of the batches seen since {@link #start()}. */
    static synchronized List<Integer> stop() throws InterruptedException {
        Thread t = poller;
        poller = null;
        if (t != null) {
            t.join();
        }
        return new ArrayList<>(SIZES);
    }

    static boolean registered() {
        return !BATCHES.isEmpty() && !GENERATIONS.isEmpty();
    }

    private static void poll() {
        long batches = sum(BATCHES);
        long generationsAtBatch = sum(GENERATIONS);
        while (poller == Thread.currentThread()) {
            long b = sum(BATCHES);
            long g = sum(GENERATIONS);
            if (b != batches) {
                // the generations since the previous increment belong to the previous batch
                if (g > generationsAtBatch) {
                    SIZES.add((int) ((g - generationsAtBatch) / Math.max(1, b - batches)));
                }
                batches = b;
                generationsAtBatch = g;
            }
            try {
                Thread.sleep(1);
            } catch (InterruptedException e) {
                return;
            }
        }
        long g = sum(GENERATIONS);
        if (g > generationsAtBatch) {
            SIZES.add((int) (g - generationsAtBatch));
        }
    }

    private static long sum(List<Counter> counters) {
        long total = 0;
        for (Counter c : counters) {
            total += c.getCount();
        }
        return total;
    }
}
