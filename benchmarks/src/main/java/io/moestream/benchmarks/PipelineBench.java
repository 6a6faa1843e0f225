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
 * Kafka → Flink → Kafka (in-process broker, MiniCluster, exactly-once sink), in measured rounds that
 * alternate the two (each pipeline round right after an engine-alone run of the same requests, so
 * both see the machine of the same minute), reported as generated tokens per second over all
 * rounds, their ratio (goal ≥ 0.7) and each round's, latency percentiles and batch sizes; writes
 * {@code pipeline-bench.json} and {@code pipeline-bench.png} into the output directory.
 *
 * <pre>
 * java -Djava.awt.headless=true --add-modules jdk.incubator.vector \
 *     -cp jobs/target/moestream.jar:benchmarks/target/pipeline-bench.jar io.moestream.benchmarks.PipelineBench \
 *     [--count 300] [--max-tokens 16] [--batch-size 8] [--seed 42] [--checkpoint-interval-ms 250]
 *     [--unaligned false] [--delivery exactly-once|at-least-once] [--profile off|cpu|wall] [--rounds 6] [--out DIR]
 *     [--job-conf KEY=VALUE,KEY=VALUE...]
 * </pre>
 */
public final class PipelineBench {

    public static void main(String[] args) throws Exception {
        Map<String, String> opts = new LinkedHashMap<>(Map.of(
                "count", "300", "max-tokens", "16", "batch-size", "8", "seed", "42",
                "checkpoint-interval-ms", "250", "unaligned", "false", "delivery", "exactly-once", "profile", "off",
                "rounds", "6", "out", "benchmarks/results"));
        opts.put("job-conf", "");
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
        System.err.println("engine alone, before the job starts: " + count + " requests ...");
        EngineRun.Result before = EngineRun.run(model, mix, batchSize);
        System.err.printf("engine alone: %.1f s, %.1f tokens/s%n", before.seconds(), before.generatedTokens() / before.seconds());
        int rounds = Integer.parseInt(opts.get("rounds"));
        System.err.println("pipeline: " + count + " requests through Kafka -> Flink -> Kafka, " + rounds
                + " rounds, each after an engine-alone run of the same requests ...");
        PipelineRun.Rounds measured = PipelineRun.run(modelFile, mix, rounds, round -> EngineRun.run(model, mix, batchSize),
                round -> RequestMix.warmUp(warmUpSize, maxTokens, round), batchSize,
                Duration.ofMillis(Long.parseLong(opts.get("checkpoint-interval-ms"))), Boolean.parseBoolean(opts.get("unaligned")),
                delivery, jobConf(opts.get("job-conf")), opts.get("profile"), out.resolve(name + "-profile-" + opts.get("profile")));

        // every round's engine-alone and pipeline runs summed: the ratio of the two rates over all rounds
        double engineSeconds = 0, engineCpu = 0, engineJit = 0, pipelineSeconds = 0, lastWritten = 0, pipelineCpu = 0, pipelineJit = 0;
        long engineTokens = 0, pipelineTokens = 0, steps = 0;
        double forward = 0, handoverWait = 0;
        double sequences = 0;
        List<Long> visible = new ArrayList<>();
        List<Long> operator = new ArrayList<>();
        List<Long> commitWait = new ArrayList<>();
        List<Integer> batchSizes = new ArrayList<>();
        List<Map<String, Object>> perRound = new ArrayList<>();
        for (PipelineRun.Round r : measured.rounds()) {
            EngineRun.Result e = r.engine();
            PipelineRun.Result pr = r.pipeline();
            engineSeconds += e.seconds();
            engineCpu += e.cpuSeconds();
            engineJit += e.jitSeconds();
            engineTokens += e.generatedTokens();
            batchSizes.addAll(e.batchSizes());
            pipelineSeconds += pr.seconds();
            lastWritten += pr.lastWrittenSeconds();
            pipelineCpu += pr.cpuSeconds();
            pipelineJit += pr.jitSeconds();
            pipelineTokens += pr.generatedTokens();
            steps += pr.steps();
            sequences += pr.sequencesPerStep() * pr.steps();
            forward += pr.forwardSeconds();
            handoverWait += pr.handoverWaitSeconds();
            visible.addAll(pr.visibleLatencyMs());
            operator.addAll(pr.operatorLatencyMs());
            commitWait.addAll(pr.commitWaitMs());
            double eTps = e.generatedTokens() / e.seconds();
            double pTps = pr.generatedTokens() / pr.seconds();
            perRound.add(Map.of("engine_tokens_per_second", round(eTps), "pipeline_tokens_per_second", round(pTps),
                    "ratio", round(pTps / eTps), "ratio_at_last_write", round(pr.generatedTokens() / pr.lastWrittenSeconds() / eTps),
                    "latency_visible_ms_p50", percentile(pr.visibleLatencyMs(), 50),
                    "engine_thread_forward_share", round(pr.forwardSeconds() / pr.seconds()),
                    "engine_thread_handover_wait_share", round(pr.handoverWaitSeconds() / pr.seconds())));
        }
        double engineTps = engineTokens / engineSeconds;
        double pipelineTps = pipelineTokens / pipelineSeconds;
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("options", opts);
        json.put("model", model.name());
        json.put("java", System.getProperty("java.version"));
        json.put("cpus", Runtime.getRuntime().availableProcessors());
        json.put("engine", Map.of(
                "seconds", round(engineSeconds), "generated_tokens", engineTokens,
                "tokens_per_second", round(engineTps), "requests_per_second", round(rounds * count / engineSeconds),
                "cpu_ms_per_token", round(1000 * engineCpu / engineTokens),
                "jit_cpu_ms_per_token", round(1000 * engineJit / engineTokens),
                "tokens_per_second_before_the_job", round(before.generatedTokens() / before.seconds()),
                "batch_sizes", histogram(batchSizes), "warm_up", warmUp(engineWarm)));
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("seconds", round(pipelineSeconds));
        p.put("generated_tokens", pipelineTokens);
        p.put("tokens_per_second", round(pipelineTps));
        p.put("requests_per_second", round(rounds * count / pipelineSeconds));
        p.put("cpu_ms_per_token", round(1000 * pipelineCpu / pipelineTokens));
        // the JIT compiler threads' part of it: code still being compiled, not the pipeline's steady work
        p.put("jit_cpu_ms_per_token", round(1000 * pipelineJit / pipelineTokens));
        p.put("latency_visible_ms", Map.of("p50", percentile(visible, 50), "p99", percentile(visible, 99)));
        p.put("latency_operator_ms", Map.of("p50", percentile(operator, 50), "p99", percentile(operator, 99)));
        p.put("commit_wait_ms", Map.of("p50", percentile(commitWait, 50), "p99", percentile(commitWait, 99)));
        p.put("seconds_to_last_write", round(lastWritten));
        p.put("steps", steps);
        p.put("sequences_per_step", round(sequences / Math.max(1, steps)));
        // the operator's engine thread: the window's share computing forward steps, and waiting for the
        // task thread to hand over admitted work (the rest: sampling, planning, idle between bursts)
        p.put("engine_thread_forward_share", round(forward / pipelineSeconds));
        p.put("engine_thread_handover_wait_share", round(handoverWait / pipelineSeconds));
        p.put("warm_up", warmUp(measured.warmUp()));
        json.put("pipeline", p);
        json.put("rounds", perRound);
        json.put("ratio", round(pipelineTps / engineTps));
        // the same ratio had the answers been visible when written: what is left without exactly-once's commit wait
        json.put("ratio_at_last_write", round(pipelineTokens / lastWritten / engineTps));
        // CPU per token, engine over pipeline: the pipeline's extra work, whatever else runs on the machine
        json.put("cpu_ratio", round((engineCpu / engineTokens) / (pipelineCpu / pipelineTokens)));
        json.put("cpu_ratio_without_jit", round(((engineCpu - engineJit) / engineTokens)
                / ((pipelineCpu - pipelineJit) / pipelineTokens)));
        json.put("same_generated_tokens", engineTokens == pipelineTokens);
        new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT)
                .writeValue(out.resolve(name + ".json").toFile(), json);
        chart(engineTps, pipelineTps, batchSizes, batchSize, out.resolve(name + ".png"));
        System.out.println(new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(json));
        System.out.printf("ratio=%.3f, at the last write %.3f (pipeline %.1f tokens/s, engine alone %.1f tokens/s, %d rounds;"
                        + " CPU per token %.2f / %.2f ms)%n",
                pipelineTps / engineTps, pipelineTokens / lastWritten / engineTps, pipelineTps, engineTps, rounds,
                1000 * pipelineCpu / pipelineTokens, 1000 * engineCpu / engineTokens);
        System.exit(0); // Kafka and Flink leave non-daemon threads behind
    }

    /** {@code --job-conf}: more job or Flink settings, {@code KEY=VALUE} pairs separated by commas. */
    private static Map<String, String> jobConf(String pairs) {
        Map<String, String> conf = new LinkedHashMap<>();
        for (String pair : pairs.split(",")) {
            if (pair.isBlank()) {
                continue;
            }
            int eq = pair.indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException("--job-conf takes KEY=VALUE pairs separated by commas, got '" + pair + "'");
            }
            conf.put(pair.substring(0, eq).trim(), pair.substring(eq + 1).trim());
        }
        return conf;
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
