package io.moestream.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.moestream.runtime.backend.BackendForward;
import io.moestream.runtime.gguf.GgmlType;
import io.moestream.runtime.gguf.GgufTensor;
import io.moestream.runtime.model.Engine;
import io.moestream.runtime.model.KvCache;
import io.moestream.runtime.model.Model;
import io.moestream.runtime.sampler.Sampler;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The oracle models of the block types (K-quants and their mixes, Q5_0 fallbacks, IQ4_NL, BF16, and
 * gpt-oss's MXFP4 with its sinks, sliding windows, YaRN, biases and clamped SwiGLU;
 * {@code moestream.oracle.types.dir}, the kit's {@code oracle-types/}) on the GPU against the CPU
 * engine, teacher-forced with the CPU's greedy tokens. Both quantize the activation the same way
 * (Q8_K / Q8_0), so they differ only in float summation order; on these random networks such a
 * difference can flip one activation rounding and grow (the oracle README measures it between two
 * llama.cpp builds), so each model must agree (same greedy token and logits within 1e-2 relative) at
 * 90 % of its steps, and its first prompt's first step must agree.
 */
@Tag("gpu")
class BlockTypeModelsGpuTest {

    static final int STEPS = 24;
    static CudaBackend cuda;

    @BeforeAll
    static void open() {
        cuda = (CudaBackend) new CudaBackendProvider().open(Integer.getInteger("moestream.cuda.device", 0));
    }

    @AfterAll
    static void close() {
        if (cuda != null) {
            cuda.close();
        }
    }

    static Stream<String> models() throws IOException {
        Path dir = Path.of(System.getProperty("moestream.oracle.types.dir", "../../shared/oracle/models"));
        assumeTrue(Files.isDirectory(dir), "no block-type oracle models in " + dir.toAbsolutePath());
        try (Stream<Path> files = Files.list(dir)) {
            return files.filter(f -> f.getFileName().toString().matches("tiny-(kmoe|kqwen3moe|granitemoe|olmoe|gpt-oss)-.*\\.gguf"))
                    .filter(f -> !f.getFileName().toString().matches(".*-(f32|q8_0)\\.gguf"))
                    .map(f -> f.toAbsolutePath().toString()).sorted().toList().stream();
        }
    }

    @ParameterizedTest
    @MethodSource("models")
    void teacherForcedLogitsTrackTheCpuEngine(String file) throws IOException {
        try (Model model = Model.load(Path.of(file))) {
            Set<GgmlType> types = EnumSet.noneOf(GgmlType.class);
            for (GgufTensor t : model.gguf().tensors().values()) {
                types.add(t.type());
            }
            String[] prompts = {"Once upon a time, there was a little robot", "The quick brown fox", "Permission is hereby granted"};
            BackendForward.Options o = BackendForward.Options.forSequences(model.config(), 1);
            Engine engine = new Engine(model);
            int steps = 0;
            int agreeing = 0;
            double worst = 0;
            Set<String> misses = new TreeSet<>();
            try (BackendForward g = new BackendForward(model, cuda, o)) {
                for (String prompt : prompts) {
                    BackendForward.Sequence sg = g.newSequence();
                    KvCache sc = model.newCache();
                    int[] ids = model.tokenizer().encodePrompt(prompt);
                    float[] lg;
                    try {
                        lg = g.forward(sg, ids);
                    } catch (UnsupportedOperationException e) { // an op the device refuses by name: the model runs on the CPU engine
                        org.junit.jupiter.api.Assumptions.abort(file + " is refused on the device: " + e.getMessage());
                        return;
                    }
                    float[] lc = engine.forward(sc, ids);
                    for (int step = 0; step < STEPS; step++) {
                        double d = CudaBackendGpuTest.relDiff(lg, lc);
                        int tok = Sampler.argmax(lc);
                        boolean agree = d < 1e-2 && Sampler.argmax(lg) == tok;
                        if (steps == 0) {
                            assertThat(agree).as("%s first step: relative diff %.2e", file, d).isTrue();
                        }
                        steps++;
                        agreeing += agree ? 1 : 0;
                        worst = Math.max(worst, d);
                        if (!agree) {
                            misses.add("'" + prompt + "' step " + step);
                        }
                        lg = g.forward(sg, new int[] {tok});
                        lc = engine.forward(sc, new int[] {tok});
                    }
                    g.release(sg);
                }
            }
            System.out.printf("%s %s: %d/%d steps agree, max relative logit diff %.2e%s%n", Path.of(file).getFileName(), types,
                    agreeing, steps, worst, misses.isEmpty() ? "" : " (differ at " + misses + ")");
            assertThat(agreeing).as("%s: steps agreeing with the CPU engine, misses %s", file, misses).isGreaterThanOrEqualTo((int) Math.ceil(0.9 * steps));
        }
    }
}
