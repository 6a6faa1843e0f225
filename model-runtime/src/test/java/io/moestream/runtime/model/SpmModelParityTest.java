package io.moestream.runtime.model;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.moestream.runtime.Fixtures;
import io.moestream.runtime.SharedOracle;
import io.moestream.runtime.sampler.Sampler;
import io.moestream.runtime.sampler.SamplingParams;
import io.moestream.runtime.tokenizer.SpmTokenizer;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@code tiny-spm-mixtral} (llama MoE with a SentencePiece vocabulary, F32 and Q8_0) end to end
 * through the public {@link Model} / {@link Engine} API against llama.cpp's goldens in
 * {@code ../shared/oracle}: the prompt ids from the text, all 32 greedy tokens, and every recorded
 * logit (all 1000 at the last prompt position and after each of the first 8 generated tokens)
 * equal to the golden's float32 value. Skipped when the oracle is absent.
 */
class SpmModelParityTest {

    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        for (String type : new String[] {"f32", "q8_0"}) {
            for (int p = 0; p < 8; p++) {
                out.add(Arguments.of(type, p));
            }
        }
        return out.stream();
    }

    @ParameterizedTest(name = "tiny-spm-mixtral-{0} prompt {1}")
    @MethodSource("cases")
    void promptIdsGreedyTokensAndLogitsMatchLlamaCpp(String type, int promptIndex) throws IOException {
        String stem = "tiny-spm-mixtral-" + type;
        JsonNode prompt = SharedOracle.golden(stem).get("prompts").get(promptIndex);
        try (Model model = Model.load(SharedOracle.model(stem))) {
            assertThat(model.tokenizer()).isInstanceOf(SpmTokenizer.class);
            int[] promptIds = model.tokenizer().encodePrompt(prompt.get("text").asText());
            assertThat(promptIds).containsExactly(Fixtures.ints(prompt.get("token_ids")));

            int[] expectedGreedy = Fixtures.ints(prompt.get("greedy_ids"));
            List<JsonNode> recorded = new ArrayList<>();
            recorded.add(prompt.get("last_logits"));
            prompt.get("gen_logits").forEach(recorded::add);

            Engine engine = new Engine(model);
            KvCache cache = model.newCache();
            float[] logits = engine.forward(cache, promptIds);
            int[] greedy = new int[expectedGreedy.length];
            double maxDiff = 0;
            int differing = 0;
            for (int step = 0; step < greedy.length; step++) {
                if (step < recorded.size()) {
                    JsonNode expected = recorded.get(step);
                    assertThat(logits).hasSize(expected.size());
                    for (int i = 0; i < logits.length; i++) {
                        float want = (float) expected.get(i).asDouble();
                        maxDiff = Math.max(maxDiff, Math.abs(logits[i] - want));
                        differing += logits[i] == want ? 0 : 1;
                    }
                }
                greedy[step] = Sampler.argmax(logits);
                // feed llama.cpp's token so that a late divergence does not hide the logits after it
                logits = engine.forward(cache, new int[] {expectedGreedy[step]});
            }
            System.out.printf("%s prompt %d: max |logit diff| %.3g, %d of %d recorded logits differ%n",
                    stem, promptIndex, maxDiff, differing, recorded.size() * 1000);
            assertThat(greedy).containsExactly(expectedGreedy);
            assertThat(differing).as("logits not bit-identical (max |diff| %s)", maxDiff).isZero();
        }
    }

    /** All 8 prompts in one {@link Engine#generate} batch: greedy text from the SentencePiece pieces. */
    @Test
    void batchedGenerateGivesTheGoldenGreedyTokensAndTheirText() throws IOException {
        String stem = "tiny-spm-mixtral-f32";
        JsonNode prompts = SharedOracle.golden(stem).get("prompts");
        try (Model model = Model.load(SharedOracle.model(stem))) {
            List<GenerationRequest> requests = new ArrayList<>();
            for (JsonNode p : prompts) {
                requests.add(new GenerationRequest(model.newCache(), model.tokenizer().encodePrompt(p.get("text").asText()),
                        SamplingParams.greedy(32), false));
            }
            List<GenerationResult> results = new Engine(model).generate(requests);
            for (int p = 0; p < prompts.size(); p++) {
                int[] golden = Fixtures.ints(prompts.get(p).get("greedy_ids"));
                int eos = Arrays.stream(golden).boxed().toList().indexOf(model.tokenizer().eosId());
                int[] expected = eos < 0 ? golden : Arrays.copyOf(golden, eos); // generate stops at EOS
                assertThat(results.get(p).tokenIds()).as("prompt %d", p).containsExactly(expected);
                ByteArrayOutputStream bytes = new ByteArrayOutputStream();
                for (int id : expected) {
                    bytes.writeBytes(model.tokenizer().tokenBytes(id));
                }
                assertThat(results.get(p).text()).isEqualTo(bytes.toString(StandardCharsets.UTF_8));
            }
        }
    }
}
