package io.moestream.runtime.model;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.moestream.runtime.Fixtures;
import io.moestream.runtime.sampler.Sampler;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Forward-pass parity with llama.cpp (F32 KV cache, no flash attention) on the oracle models: same
 * prompt ids, all 32 greedy tokens identical, logits within the model's tolerance at the last
 * prompt position (all 768) and at the top-10 ids of the next 8 positions. F32 models: 2e-3.
 * Q8_0/Q4_0/F16 models: 1e-2, which holds only because the matmuls round the activation as
 * llama.cpp does (Q8_0 quants / F16); the plain float path misses these goldens by 0.9-2.2 and
 * greedy decoding diverges.
 */
class ParityTest {

    static final double TOLERANCE = 2e-3;
    static final double QUANTIZED_TOLERANCE = 1e-2;
    static final List<String> MODELS = List.of(Fixtures.TINY_LLAMA, Fixtures.TINY_MIXTRAL,
            "tiny-llama-q8_0", "tiny-llama-q4_0", "tiny-mixtral-q8_0", "tiny-mixtral-q4_0", "tiny-mixtral-f16");
    static final java.util.Map<String, Model> LOADED = new java.util.HashMap<>();
    static final java.util.Map<String, Double> MAX_DIFF = new java.util.TreeMap<>();

    @BeforeAll
    static void load() throws IOException {
        for (String m : MODELS) {
            LOADED.put(m, Model.load(Fixtures.model(m)));
        }
    }

    @AfterAll
    static void report() {
        System.out.println("max |logit diff| vs llama.cpp: " + MAX_DIFF);
    }

    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        for (String m : MODELS) {
            for (int p = 0; p < 6; p++) {
                out.add(Arguments.of(m, p));
            }
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{0} prompt {1}")
    @MethodSource("cases")
    void greedyTokensAndLogitsMatchLlamaCpp(String stem, int promptIndex) {
        Model model = LOADED.get(stem);
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
        double entry0 = maxDiff;
        int[] greedy = new int[expectedGreedy.length];
        for (int step = 0; step < greedy.length; step++) {
            if (step < logitsTop.size()) {
                for (JsonNode pair : logitsTop.get(step).get("top")) {
                    maxDiff = Math.max(maxDiff, Math.abs(logits[pair.get(0).asInt()] - pair.get(1).asDouble()));
                }
            }
            greedy[step] = Sampler.argmax(logits);
            logits = engine.forward(cache, new int[] {greedy[step]});
        }
        int div = -1;
        for (int i = 0; i < greedy.length; i++) { if (greedy[i] != expectedGreedy[i]) { div = i; break; } }
        System.out.println("DIAG " + stem + " p" + promptIndex + " entry0=" + entry0 + " all=" + maxDiff + " diverge@" + div);
        synchronized (MAX_DIFF) {
            MAX_DIFF.merge(stem, maxDiff, Math::max);
        }
        assertThat(greedy).containsExactly(expectedGreedy);
        assertThat(maxDiff).isLessThan(stem.endsWith("f32") ? TOLERANCE : QUANTIZED_TOLERANCE);
        assertThat(cache.length()).isEqualTo(promptIds.length + greedy.length);
    }
}
