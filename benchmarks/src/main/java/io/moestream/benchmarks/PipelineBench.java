package io.moestream.benchmarks;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.moestream.runtime.model.DefaultModel;
import io.moestream.runtime.model.Model;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.data.category.DefaultCategoryDataset;

import javax.imageio.ImageIO;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.geom.Rectangle2D;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Pipeline throughput bench: the same seeded request mix through the engine alone and through
 * Kafka → Flink → Kafka (in-process broker, MiniCluster, exactly-once sink), reported as generated
 * tokens per second, their ratio (goal ≥ 0.7), latency percentiles and batch sizes; writes
 * {@code pipeline-bench.json} and {@code pipeline-bench.png} into the output directory.
 *
 * <pre>
 * java -Djava.awt.headless=true --add-modules jdk.incubator.vector \
 *     -cp jobs/target/moestream.jar:benchmarks/target/pipeline-bench.jar io.moestream.benchmarks.PipelineBench \
 *     [--count 300] [--max-tokens 16] [--batch-size 8] [--seed 42] [--checkpoint-interval-ms 250]
 *     [--unaligned false] [--delivery exactly-once|at-least-once] [--profile off|cpu|wall] [--out DIR]
 * </pre>
 */
public final class PipelineBench {

    public static void main(String[] args) throws Exception {
        Map<String, String> opts = new LinkedHashMap<>(Map.of(
                "count", "300", "max-tokens", "16", "batch-size", "8", "seed", "42",
                "checkpoint-interval-ms", "250", "unaligned", "false", "delivery", "exactly-once", "profile", "off",
                "out", "benchmarks/results"));
        for (int i = 0; i + 1 < args.length; i += 2) {
            if (!args[i].startsWith("--") || !opts.containsKey(args[i].substring(2))) {
                throw new IllegalArgumentException("unknown option " + args[i] + "; options: " + opts.keySet());
            }
            opts.put(args[i].substring(2), args[i + 1]);
        }
        int count = Integer.parseInt(opts.get("count"));
        int maxTokens = Integer.parseInt(opts.get("max-tokens"));
        int batchSize = Integer.parseInt(opts.get("batch-size"));
        Path out = Path.of(opts.get("out"));
        String delivery = opts.get("delivery");
        String name = "pipeline-bench" + (Boolean.parseBoolean(opts.get("unaligned")) ? "-unaligned" : "")
                + (delivery.equals("exactly-once") ? "" : "-" + delivery);
        Files.createDirectories(out);

        Path modelFile = DefaultModel.path();
        Model model = Model.load(modelFile);
        RequestMix mix = RequestMix.generate(count, maxTokens, Long.parseLong(opts.get("seed")));

        int warmUpSize = Math.min(count, 400);
        WarmUp.Result engineWarm = WarmUp.untilQuiet("engine", round -> EngineRun.run(model,
                new RequestMix(mix.documents(), RequestMix.warmUp(warmUpSize, maxTokens, round)), batchSize));
        System.err.println("engine alone: " + count + " requests ...");
        EngineRun.Result engine = EngineRun.run(model, mix, batchSize);
        System.err.printf("engine alone: %.1f s, %.1f tokens/s%n", engine.seconds(), engine.generatedTokens() / engine.seconds());
        System.err.println("pipeline: " + count + " requests through Kafka -> Flink -> Kafka ...");
        PipelineRun.Result pipeline = PipelineRun.run(modelFile, mix,
                round -> RequestMix.warmUp(warmUpSize, maxTokens, round), batchSize,
                Duration.ofMillis(Long.parseLong(opts.get("checkpoint-interval-ms"))), Boolean.parseBoolean(opts.get("unaligned")),
                delivery, opts.get("profile"), out.resolve(name + "-profile-" + opts.get("profile")));

        double engineTps = engine.generatedTokens() / engine.seconds();
        double pipelineTps = pipeline.generatedTokens() / pipeline.seconds();
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("options", opts);
        json.put("model", model.name());
        json.put("java", System.getProperty("java.version"));
        json.put("cpus", Runtime.getRuntime().availableProcessors());
        json.put("engine", Map.of(
                "seconds", round(engine.seconds()), "generated_tokens", engine.generatedTokens(),
                "tokens_per_second", round(engineTps), "requests_per_second", round(count / engine.seconds()),
                "cpu_ms_per_token", round(1000 * engine.cpuSeconds() / engine.generatedTokens()),
                "jit_cpu_ms_per_token", round(1000 * engine.jitSeconds() / engine.generatedTokens()),
                "batch_sizes", histogram(engine.batchSizes()), "warm_up", warmUp(engineWarm)));
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("seconds", round(pipeline.seconds()));
        p.put("generated_tokens", pipeline.generatedTokens());
        p.put("tokens_per_second", round(pipelineTps));
        p.put("requests_per_second", round(count / pipeline.seconds()));
        p.put("cpu_ms_per_token", round(1000 * pipeline.cpuSeconds() / pipeline.generatedTokens()));
        // the JIT compiler threads' part of it: code still being compiled, not the pipeline's steady work
        p.put("jit_cpu_ms_per_token", round(1000 * pipeline.jitSeconds() / pipeline.generatedTokens()));
        p.put("latency_visible_ms", Map.of("p50", percentile(pipeline.visibleLatencyMs(), 50),
                "p99", percentile(pipeline.visibleLatencyMs(), 99)));
        p.put("latency_operator_ms", Map.of("p50", percentile(pipeline.operatorLatencyMs(), 50),
                "p99", percentile(pipeline.operatorLatencyMs(), 99)));
        p.put("commit_wait_ms", Map.of("p50", percentile(pipeline.commitWaitMs(), 50),
                "p99", percentile(pipeline.commitWaitMs(), 99)));
        p.put("seconds_to_last_write", round(pipeline.lastWrittenSeconds()));
        p.put("steps", pipeline.steps());
        p.put("sequences_per_step", round(pipeline.sequencesPerStep()));
        p.put("warm_up", warmUp(pipeline.warmUp()));
        json.put("pipeline", p);
        json.put("ratio", round(pipelineTps / engineTps));
        // the same ratio had the answers been visible when written: what is left without exactly-once's commit wait
        json.put("ratio_at_last_write", round(pipeline.generatedTokens() / pipeline.lastWrittenSeconds() / engineTps));
        // CPU per token, engine over pipeline: the pipeline's extra work, whatever else runs on the machine
        json.put("cpu_ratio", round((engine.cpuSeconds() / engine.generatedTokens())
                / (pipeline.cpuSeconds() / pipeline.generatedTokens())));
        json.put("cpu_ratio_without_jit", round(((engine.cpuSeconds() - engine.jitSeconds()) / engine.generatedTokens())
                / ((pipeline.cpuSeconds() - pipeline.jitSeconds()) / pipeline.generatedTokens())));
        json.put("same_generated_tokens", engine.generatedTokens() == pipeline.generatedTokens());
        new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT)
                .writeValue(out.resolve(name + ".json").toFile(), json);
        chart(engineTps, pipelineTps, engine.batchSizes(), batchSize, out.resolve(name + ".png"));
        System.out.println(new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(json));
        System.out.printf("ratio=%.3f, at the last write %.3f (pipeline %.1f tokens/s, engine alone %.1f tokens/s;"
                        + " CPU per token %.2f / %.2f ms)%n",
                pipelineTps / engineTps, pipeline.generatedTokens() / pipeline.lastWrittenSeconds() / engineTps, pipelineTps, engineTps, 1000 * pipeline.cpuSeconds() / pipeline.generatedTokens(),
                1000 * engine.cpuSeconds() / engine.generatedTokens());
        System.exit(0); // Kafka and Flink leave non-daemon threads behind
    }

    private static double round(double v) {
        return Math.round(v * 1000) / 1000.0;
    }

    private static long percentile(List<Long> values, int pct) {
        List<Long> sorted = new ArrayList<>(values);
        Collections.sort(sorted);
        if (sorted.isEmpty()) {
            return -1;
        }
        int index = (int) Math.ceil(pct / 100.0 * sorted.size()) - 1;
        return sorted.get(Math.max(0, Math.min(sorted.size() - 1, index)));
    }

    private static Map<String, Object> warmUp(WarmUp.Result w) {
        return Map.of("rounds", w.rounds(), "seconds", round(w.seconds()), "jit_share_last_round", round(w.lastJitShare()));
    }

    private static Map<Integer, Integer> histogram(List<Integer> sizes) {
        Map<Integer, Integer> h = new TreeMap<>();
        sizes.forEach(s -> h.merge(s, 1, Integer::sum));
        return h;
    }

    private static void chart(double engineTps, double pipelineTps, List<Integer> engineBatches,
                              int batchSize, Path file) throws Exception {
        DefaultCategoryDataset throughput = new DefaultCategoryDataset();
        throughput.addValue(engineTps, "tokens/s", "engine alone");
        throughput.addValue(pipelineTps, "tokens/s", "Kafka → Flink → Kafka");
        JFreeChart left = ChartFactory.createBarChart(
                String.format("Generated tokens/s (ratio %.2f)", pipelineTps / engineTps),
                null, "tokens/s", throughput, PlotOrientation.VERTICAL, false, false, false);

        DefaultCategoryDataset batches = new DefaultCategoryDataset();
        Map<Integer, Integer> e = histogram(engineBatches);
        int largest = Math.max(batchSize, e.keySet().stream().mapToInt(Integer::intValue).max().orElse(0));
        for (int s = 1; s <= largest; s++) {
            batches.addValue(e.getOrDefault(s, 0), "engine alone", Integer.toString(s));
        }
        JFreeChart right = ChartFactory.createBarChart("Engine-alone batch sizes", "requests per batch", "batches", batches,
                PlotOrientation.VERTICAL, true, false, false);

        BufferedImage image = new BufferedImage(1200, 450, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = image.createGraphics();
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, 1200, 450);
        left.draw(g, new Rectangle2D.Double(0, 0, 500, 450));
        right.draw(g, new Rectangle2D.Double(500, 0, 700, 450));
        g.dispose();
        ImageIO.write(image, "png", file.toFile());
    }

    private PipelineBench() {}
}
