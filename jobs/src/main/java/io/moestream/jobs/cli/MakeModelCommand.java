package io.moestream.jobs.cli;

import io.moestream.runtime.gguf.GgmlType;
import io.moestream.runtime.synthetic.SyntheticModels;
import io.moestream.runtime.synthetic.SyntheticSpec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/** {@code moestream make-model}: writes a random-weight Mixtral-style GGUF for tests and benchmarks. */
@Command(
        name = "make-model",
        mixinStandardHelpOptions = true,
        description = {
            "Writes a random-weight Mixtral-style llama MoE model as GGUF, with the oracle's 768-token BPE tokenizer.",
            "Presets: tiny (n_embd 128, 2 layers, ~7 MB F32), small (n_embd 256, 4 layers, ~54 MB F32),"
                    + " bench (n_embd 2048, 8 layers, 892 M parameters: 1.8 GB F16, 0.95 GB Q8_0)."
        })
public final class MakeModelCommand implements Callable<Integer> {

    @Spec CommandSpec spec;

    @Option(names = "--out", paramLabel = "FILE", required = true, description = "GGUF file to write (overwritten).")
    Path out;

    @Option(names = "--preset", paramLabel = "NAME", defaultValue = "tiny", description = "tiny|small|bench|long (long: the tiny shape with a 33,280-token context; default: ${DEFAULT-VALUE}).")
    String preset;

    @Option(names = "--type", paramLabel = "TYPE", defaultValue = "f32",
            description = "Weight type of the matrices: f32|f16|bf16|q8_0|q4_0 (default: ${DEFAULT-VALUE}); norms and router stay f32.")
    String type;

    @Option(names = "--seed", paramLabel = "N", defaultValue = "2001", description = "Random seed (default: ${DEFAULT-VALUE}); same seed, same file.")
    long seed;

    @Option(names = "--chat",
            description = "An instruct model: adds the control tokens <|im_start|> and <|im_end|> (the EOT) and a ChatML"
                    + " tokenizer.chat_template, for prompts given as chat messages.")
    boolean chat;

    @Override
    public Integer call() {
        PrintWriter err = spec.commandLine().getErr();
        SyntheticSpec s;
        try {
            s = SyntheticSpec.preset(preset, seed);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), "--preset: " + e.getMessage());
        }
        GgmlType weightType = switch (type.toLowerCase(Locale.ROOT)) {
            case "f32" -> GgmlType.F32;
            case "f16" -> GgmlType.F16;
            case "bf16" -> GgmlType.BF16;
            case "q8_0" -> GgmlType.Q8_0;
            case "q4_0" -> GgmlType.Q4_0;
            default -> throw new ParameterException(spec.commandLine(), "--type: unknown type '" + type + "' (f32, f16, bf16, q8_0, q4_0)");
        };
        Path parent = out.toAbsolutePath().getParent();
        if (parent != null && !Files.isDirectory(parent)) {
            throw new ParameterException(spec.commandLine(), "--out: directory does not exist: " + parent);
        }
        long t0 = System.nanoTime();
        try {
            if (chat) {
                SyntheticModels.writeChat(s, weightType, out);
            } else {
                SyntheticModels.write(s, weightType, out);
            }
            err.printf(Locale.ROOT, "wrote %s: preset %s, %s, %,d parameters, %,d bytes in %.1f s%n", out, preset,
                    weightType, s.parameters(), Files.size(out), (System.nanoTime() - t0) / 1e9);
            err.flush();
            return 0;
        } catch (IOException e) {
            err.println("cannot write " + out + ": " + e.getMessage());
            return 1;
        }
    }
}
