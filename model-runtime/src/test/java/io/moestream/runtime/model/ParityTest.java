package io.moestream.runtime.model;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.moestream.runtime.Fixtures;
import io.moestream.runtime.gguf.GgmlType;
import io.moestream.runtime.sampler.Sampler;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Forward-pass parity with llama.cpp (CPU, F32 KV cache, no flash attention) on every oracle model in
 * {@code src/test/resources/oracle/} (all architectures and weight types) and every prompt of its
 * golden: same prompt ids, all 32 greedy tokens identical, logits within {@link #F32_TOLERANCE} for
 * F32 models and {@link #TOLERANCE} for the others at the last prompt position (all logits, the
 * golden rounded to 5 decimals) and at the top-10 ids of all 9 recorded positions (full precision).
 *
 * <p>The engine reproduces llama.cpp's CPU float operations (docs/runtime.md, "Parity with
 * llama.cpp"), so today every recorded top-10 logit is bit-identical; {@link #report()} prints the
 * max |diff| and the bit-identical count per model. Nothing is excused.
 */
class ParityTest {

    static final double F32_TOLERANCE = 2e-3;
    static final double TOLERANCE = 2e-2;
    static final Map<String, Model> LOADED = new ConcurrentHashMap<>();
    static final Map<String, double[]> STATS = new TreeMap<>(); // stem -> max |diff|, exact top-10, top-10 checked

    static Model model(String stem) {
        return LOADED.computeIfAbsent(stem, s -> {
            try {
                return Model.load(Fixtures.model(s));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
    }

    @AfterAll
    static void report() {
        StringBuilder sb = new StringBuilder("parity with llama.cpp (max |logit diff|, top-10 logits bit-identical):\n");
        STATS.forEach((stem, s) -> sb.append(String.format("  %-20s max %.2e  bit-identical %d/%d%n", stem, s[0], (long) s[1], (long) s[2])));
        System.out.print(sb);
    }

    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        for (String stem : Fixtures.oracleModels()) {
            int prompts = Fixtures.golden(stem).get("prompts").size();
            for (int p = 0; p < prompts; p++) {
                out.add(Arguments.of(stem, p));
            }
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{0} prompt {1}")
    @MethodSource("cases")
    void greedyTokensAndLogitsMatchLlamaCpp(String stem, int promptIndex) throws IOException {
        Model model = model(stem);
        JsonNode prompt = Fixtures.golden(stem).get("prompts").get(promptIndex);
        int[] promptIds = Fixtures.ints(prompt.get("token_ids"));
        int[] expectedGreedy = Fixtures.ints(prompt.get("greedy_ids"));
        JsonNode logitsTop = prompt.get("logits_top");

        assertThat(model.tokenizer().encodePrompt(prompt.get("text").asText())).containsExactly(promptIds);

        Engine engine = new Engine(model);
        KvCache cache = model.newCache();
        float[] logits = engine.forward(cache, promptIds);
        double maxDiff = 0;
        JsonNode last = prompt.get("last_logits");
        assertThat(logits).hasSize(last.size());
        for (int i = 0; i < logits.length; i++) {
            maxDiff = Math.max(maxDiff, Math.abs(logits[i] - last.get(i).asDouble()));
        }
        int exact = 0;
        int checked = 0;
        int[] greedy = new int[expectedGreedy.length];
        for (int step = 0; step < greedy.length; step++) {
            if (step < logitsTop.size()) {
                for (JsonNode pair : logitsTop.get(step).get("top")) {
                    float got = logits[pair.get(0).asInt()];
                    maxDiff = Math.max(maxDiff, Math.abs(got - pair.get(1).asDouble()));
                    exact += got == (float) pair.get(1).asDouble() ? 1 : 0;
                    checked++;
                }
            }
            greedy[step] = Sampler.argmax(logits);
            logits = engine.forward(cache, new int[] {greedy[step]});
        }
        synchronized (STATS) {
            double[] s = STATS.computeIfAbsent(stem, k -> new double[3]);
            s[0] = Math.max(s[0], maxDiff);
            s[1] += exact;
            s[2] += checked;
        }
        assertThat(greedy).containsExactly(expectedGreedy);
        boolean f32 = model.gguf().tensor("token_embd.weight").type() == GgmlType.F32;
        assertThat(maxDiff).isLessThan(f32 ? F32_TOLERANCE : TOLERANCE);
        assertThat(cache.length()).isEqualTo(promptIds.length + greedy.length);
    }
}
