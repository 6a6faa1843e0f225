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
 * Forward-pass parity with llama.cpp (F32 KV cache, no flash attention) on the oracle models of
 * every architecture (llama dense, Mixtral, qwen3moe, qwen2moe, bailingmoe2) and weight type: same
 * prompt ids, all 32 greedy tokens identical, logits within the model's tolerance at the last
 * prompt position (all 768) and at the top-10 ids of the next 8 positions. F32 models: 2e-3.
 * Q8_0/Q4_0 models: 1e-2 (typically 5e-6, the goldens' rounding: the matmuls quantize activations
 * and order their float operations as llama.cpp does); F16: 2e-2 (activations rounded to F16, but
 * many values sit near an F16 rounding boundary). The plain float path misses the quantized
 * goldens by 0.9-2.2 and greedy decoding diverges.
 *
 * <p>{@link #KNOWN_FLIPS}: prompts where one Q8_0 activation quant lands on the other side of a
 * rounding boundary than in llama.cpp (float rounding differences outside the matmuls, e.g.
 * RMSNorm sums, exp/silu, attention order), which moves logits by 0.1-0.4; and tiny-mixtral-q4_0,
 * where 4 of 6 prompts already differ by 0.17-0.38 after the prompt (llama.cpp's repacked Q4_0
 * MoE path; dense Q4_0 matches to 5e-6) and prompt 0's greedy run diverges at token 3. These
 * get the oracle README's loose check: same argmax after the prompt, max |diff| there < 0.5.
 * tiny-mixtral-f16 prompt 2: greedy token 5 has a near tie that F16 activation rounding decides
 * differently (entry 0 within 1e-2).
 */
class ParityTest {

    static final double TOLERANCE = 2e-3;
    static final double QUANTIZED_TOLERANCE = 1e-2;
    static final double F16_TOLERANCE = 2e-2;
    static final double LOOSE_TOLERANCE = 0.5;
    static final java.util.Map<String, java.util.Set<Integer>> KNOWN_FLIPS = java.util.Map.of(
            "tiny-llama-q8_0", java.util.Set.of(2, 3, 5),
            "tiny-mixtral-q8_0", java.util.Set.of(5),
            "tiny-mixtral-q4_0", java.util.Set.of(0, 2, 4, 5),
            "tiny-mixtral-f16", java.util.Set.of(2));
    static final List<String> MODELS = List.of(Fixtures.TINY_LLAMA, Fixtures.TINY_MIXTRAL, Fixtures.TINY_QWEN3MOE,
            Fixtures.TINY_QWEN2MOE, Fixtures.TINY_GROUPMOE, "tiny-llama-q8_0", "tiny-llama-q4_0", "tiny-mixtral-q8_0", "tiny-mixtral-q4_0", "tiny-mixtral-f16");
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
        int entry0Argmax = Sampler.argmax(logits);
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
        boolean knownFlip = KNOWN_FLIPS.getOrDefault(stem, java.util.Set.of()).contains(promptIndex);
        synchronized (MAX_DIFF) {
            MAX_DIFF.merge(knownFlip ? stem + " (known flips, after the prompt)" : stem, knownFlip ? entry0 : maxDiff, Math::max);
        }
        if (knownFlip) {
            assertThat(entry0Argmax).isEqualTo(expectedGreedy[0]);
            assertThat(entry0).isLessThan(LOOSE_TOLERANCE);
            return;
        }
        assertThat(greedy).containsExactly(expectedGreedy);
        double tolerance = stem.endsWith("f32") ? TOLERANCE : stem.endsWith("f16") ? F16_TOLERANCE : QUANTIZED_TOLERANCE;
        assertThat(maxDiff).isLessThan(tolerance);
        assertThat(cache.length()).isEqualTo(promptIds.length + greedy.length);
    }
}
