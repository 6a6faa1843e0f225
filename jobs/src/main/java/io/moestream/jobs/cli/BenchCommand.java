package io.moestream.jobs.cli;

import io.moestream.runtime.bench.InferenceBenchmark;
import io.moestream.runtime.kv.KvCodec;
import io.moestream.runtime.model.Model;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * {@code moestream bench}: prefill and decode throughput of the CPU runtime on a GGUF file, like
 * llama-bench ({@code -p P -n G}) and llama-batched-bench (B parallel sequences).
 */
@Command(
        name = "bench",
        mixinStandardHelpOptions = true,
        description = {
            "Measures prefill and decode tokens/s of the model runtime: B sequences each prefill P random tokens,"
                    + " then decode G tokens each in lockstep. Throughputs are aggregates over the batch.",
            "Also measures the memory read bandwidth and reports the weight bytes read per decoded token, so"
                    + " decode speed can be set against its ceiling (bandwidth / bytes per token).",
            "Runs with the Vector API kernels (in a child JVM with --add-modules jdk.incubator.vector when this one lacks it;"
                    + " -Dmoestream.launcher.relaunch=false measures without)."
        })
public final class BenchCommand implements Callable<Integer> {

    @Spec CommandSpec spec;

    @Option(names = "--model", paramLabel = "FILE", required = true, description = "GGUF model file (e.g. from make-model --preset bench).")
    Path model;

    @Option(names = "--threads", paramLabel = "T", description = "Matmul threads (default: available processors).")
    Integer threads;

    @Option(names = "--batch", paramLabel = "B", defaultValue = "1", description = "Concurrent sequences (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--prompt-tokens", paramLabel = "P", defaultValue = "64", description = "Prompt tokens per sequence (default: ${DEFAULT-VALUE}).")
    int promptTokens;

    @Option(names = "--gen-tokens", paramLabel = "G", defaultValue = "32", description = "Decoded tokens per sequence (default: ${DEFAULT-VALUE}).")
    int genTokens;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "1", description = "Seed of the random prompts (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--kv-codec", paramLabel = "CODEC", defaultValue = "f32",
            description = "Codec of the sequences' KV blocks: f32 (as llama.cpp's cache), f16, int8, int4 (optional /group)"
                    + " (default: ${DEFAULT-VALUE}; the operator's default is int8).")
    String kvCodec;

    @Option(names = "--json", description = "Print one JSON object instead of a summary.")
    boolean json;

    @Override
    public Integer call() {
        int t = threads == null ? Runtime.getRuntime().availableProcessors() : threads;
        if (t < 1 || batch < 1 || promptTokens < 1 || genTokens < 1) {
            throw new ParameterException(spec.commandLine(), "--threads, --batch, --prompt-tokens and --gen-tokens must be >= 1");
        }
        KvCodec codec;
        try {
            codec = KvCodec.parse(kvCodec);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), "--kv-codec: " + e.getMessage());
        }
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        InferenceBenchmark.Result r;
        try (Model m = Model.load(model)) {
            r = InferenceBenchmark.run(m, new InferenceBenchmark.Options(t, batch, promptTokens, genTokens, seed, 512 << 20, codec));
        } catch (IOException e) {
            err.println("cannot load " + model + ": " + e.getMessage());
            return 1;
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), e.getMessage());
        }
        if (json) {
            out.println(r.toJson());
        } else {
            out.printf(Locale.ROOT, "%s, %s kernels, %d threads, batch %d, %s KV blocks%n", r.model(), r.kernels(), r.threads(),
                    r.batch(), r.kvCodec());
            out.printf(Locale.ROOT, "prefill: %d x %d tokens in %.2f s = %.1f tokens/s%n", r.batch(), r.promptTokens(),
                    r.prefillSeconds(), r.prefillTokensPerSecond());
            out.printf(Locale.ROOT, "decode:  %d x %d tokens in %.2f s = %.1f tokens/s%n", r.batch(), r.genTokens(),
                    r.decodeSeconds(), r.decodeTokensPerSecond());
            out.printf(Locale.ROOT, "weights read per token %.1f MB, memory read bandwidth %.1f GB/s: ceiling %.1f tokens/s (decode at %.0f%%)%n",
                    r.bytesPerToken() / 1e6, r.memoryGBs(), r.decodeCeilingTokensPerSecond(),
                    100 * r.decodeTokensPerSecond() / r.decodeCeilingTokensPerSecond());
        }
        out.flush();
        return 0;
    }
}
