package io.moestream.runtime.model;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.moestream.runtime.Fixtures;
import io.moestream.runtime.gguf.GgmlType;
import io.moestream.runtime.sampler.Sampler;
import io.moestream.runtime.sampler.SamplingParams;

import java.io.IOException;
import java.util.List;

import org.junit.jupiter.api.Test;

/**
 * The bundled demo model (trained-moe quantized by llama-quantize to Q4_K_M: Q4_K and Q6_K tensors)
 * against llama.cpp's golden for the same file: prompt ids, all 32 greedy tokens and the top-10
 * logits at the last prompt position equal as float32 (the K-quant path copies llama.cpp's
 * activation quantization and summation order).
 */
class DefaultModelTest {

    @Test
    void matchesLlamaCppBitForBit() throws IOException {
        try (Model model = Model.loadDefault()) {
            assertThat(model.name()).isEqualTo("trained-moe-q4_k_m");
            assertThat(model.config().vocabSize()).isEqualTo(2048);
            assertThat(model.config().experts()).isEqualTo(8);
            assertThat(model.contextLength()).isEqualTo(4096);
            assertThat(model.gguf().tensor("blk.0.attn_q.weight").type()).isEqualTo(GgmlType.Q4_K);
            Engine engine = new Engine(model);
            JsonNode prompts = Fixtures.golden("trained-moe-q4_k_m").get("prompts");
            assertThat(prompts).hasSize(5);
            for (JsonNode p : prompts) {
                String text = p.get("text").asText();
                int[] ids = Fixtures.ints(p.get("token_ids"));
                assertThat(model.tokenizer().encodePrompt(text)).as(text).containsExactly(ids);
                KvCache cache = model.newCache();
                float[] logits = engine.forward(cache, ids);
                for (JsonNode pair : p.get("logits_top").get(0).get("top")) {
                    assertThat(logits[pair.get(0).asInt()]).as(text + " logit " + pair.get(0).asInt())
                            .isEqualTo((float) pair.get(1).asDouble());
                }
                int[] greedy = new int[32];
                for (int step = 0; step < greedy.length; step++) {
                    greedy[step] = Sampler.argmax(logits);
                    logits = engine.forward(cache, new int[] {greedy[step]});
                }
                assertThat(greedy).as(text).containsExactly(Fixtures.ints(p.get("greedy_ids")));
            }
        }
    }

    @Test
    void generatesReadableEnglish() throws IOException {
        try (Model model = Model.loadDefault()) {
            GenerationResult r = new Engine(model).generate(List.of(new GenerationRequest(model.newCache(),
                    model.tokenizer().encodePrompt("The import statement"), SamplingParams.greedy(32), false))).get(0);
            assertThat(r.text()).startsWith(" is a list of");
            assertThat(r.text().chars().filter(ch -> Character.isLetter(ch) || ch == ' ').count())
                    .isGreaterThan(r.text().length() * 3L / 4);
        }
    }
}
