package io.moestream.runtime.model;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.moestream.runtime.Fixtures;
import io.moestream.runtime.SharedOracle;
import io.moestream.runtime.sampler.Sampler;

import java.io.IOException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The K-quant, IQ4_NL and BF16 oracle files (every per-tensor mix of oracle set 2 and the trained
 * model's K-quants) against llama.cpp's goldens in {@code ../shared/oracle}, teacher-forced: each
 * prompt's golden ids, then llama.cpp's 32 greedy tokens fed one at a time. At the 9 recorded
 * positions of every prompt the full logit vector is compared; at all 32 steps the argmax.
 *
 * <p>Each file asserts the strongest claim that holds for it ({@link Claim}): {@code BIT_IDENTICAL}
 * (every recorded logit equal to the golden's float32 value, every argmax equal to llama.cpp's greedy
 * token) or {@code TOP10} (at >= 90 % of the recorded positions the top-10 ids are the golden's and
 * each of their logits is within 0.1 of it). The prompt ids from the text are checked too.
 * Skipped when the oracle is absent.
 */
class KQuantParityTest {

    enum Claim { BIT_IDENTICAL, TOP10 }

    static Stream<Arguments> files() {
        return Stream.of(
                Arguments.of("tiny-kmoe-q6_k", Claim.BIT_IDENTICAL),
                Arguments.of("tiny-kmoe-q5_k", Claim.BIT_IDENTICAL),
                Arguments.of("tiny-kmoe-q4_k", Claim.BIT_IDENTICAL),
                Arguments.of("tiny-kmoe-q3_k", Claim.BIT_IDENTICAL),
                Arguments.of("tiny-kmoe-q2_k", Claim.BIT_IDENTICAL),
                Arguments.of("tiny-kmoe-iq4_nl", Claim.BIT_IDENTICAL),
                Arguments.of("tiny-kmoe-q4_k_m", Claim.BIT_IDENTICAL),
                Arguments.of("tiny-kmoe-q5_k_m", Claim.BIT_IDENTICAL),
                Arguments.of("tiny-kmoe-bf16", Claim.BIT_IDENTICAL),
                Arguments.of("tiny-kqwen3moe-q6_k", Claim.BIT_IDENTICAL),
                Arguments.of("tiny-kqwen3moe-q4_k_m", Claim.BIT_IDENTICAL),
                Arguments.of("trained-moe-q6_k", Claim.BIT_IDENTICAL),
                Arguments.of("trained-moe-q4_k_m", Claim.BIT_IDENTICAL),
                Arguments.of("tiny-olmoe-q4_k_m", Claim.BIT_IDENTICAL),
                Arguments.of("tiny-granitemoe-q4_k_m", Claim.BIT_IDENTICAL),
                Arguments.of("tiny-gpt-oss-q4_k_m", Claim.BIT_IDENTICAL),
                Arguments.of("tiny-gpt-oss-mxfp4", Claim.BIT_IDENTICAL),
                Arguments.of("tiny-deepseek2-q4_k_m", Claim.BIT_IDENTICAL));
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("files")
    void teacherForcedLogitsMatchLlamaCpp(String stem, Claim claim) throws IOException {
        JsonNode golden = SharedOracle.golden(stem);
        int positions = 0;
        int identical = 0;
        int top10 = 0;
        int steps = 0;
        int argmaxEqual = 0;
        double maxDiff = 0;
        List<String> perPrompt = new ArrayList<>();
        try (Model model = Model.load(SharedOracle.model(stem))) {
            Engine engine = new Engine(model);
            for (JsonNode prompt : golden.get("prompts")) {
                int[] ids = Fixtures.ints(prompt.get("token_ids"));
                assertThat(model.tokenizer().encodePrompt(prompt.get("text").asText())).containsExactly(ids);
                int[] greedy = Fixtures.ints(prompt.get("greedy_ids"));
                List<JsonNode> recorded = new ArrayList<>();
                recorded.add(prompt.get("last_logits"));
                prompt.get("gen_logits").forEach(recorded::add);
                KvCache cache = model.newCache();
                float[] logits = engine.forward(cache, ids);
                double promptMax = 0;
                int firstMiss = -1;
                for (int step = 0; step < greedy.length; step++) {
                    if (step < recorded.size()) {
                        JsonNode want = recorded.get(step);
                        JsonNode top = prompt.get("logits_top").get(step).get("top");
                        positions++;
                        boolean same = true;
                        for (int i = 0; i < logits.length; i++) {
                            float w = (float) want.get(i).asDouble();
                            same &= logits[i] == w;
                            promptMax = Math.max(promptMax, Math.abs(logits[i] - w));
                        }
                        identical += same ? 1 : 0;
                        top10 += topTenAgrees(logits, top) ? 1 : 0;
                    }
                    steps++;
                    if (Sampler.argmax(logits) == greedy[step]) {
                        argmaxEqual++;
                    } else if (firstMiss < 0) {
                        firstMiss = step;
                    }
                    logits = engine.forward(cache, new int[] {greedy[step]});
                }
                maxDiff = Math.max(maxDiff, promptMax);
                perPrompt.add(String.format("%.2g%s", promptMax, firstMiss < 0 ? "" : "@" + firstMiss));
            }
        }
        System.out.printf("%s: %d/%d positions bit-identical, top-10 within 0.1 at %d/%d, argmax %d/%d, max |diff| %.3g; per prompt %s%n",
                stem, identical, positions, top10, positions, argmaxEqual, steps, maxDiff, perPrompt);
        if (claim == Claim.BIT_IDENTICAL) {
            assertThat(identical).as("bit-identical positions (max |diff| %s, per prompt %s)", maxDiff, perPrompt).isEqualTo(positions);
            assertThat(argmaxEqual).as("argmax equal to llama.cpp's greedy token").isEqualTo(steps);
        } else {
            assertThat(top10).as("positions with the top-10 within 0.1 (per prompt %s)", perPrompt).isGreaterThanOrEqualTo((int) Math.ceil(0.9 * positions));
        }
    }

    /** The golden's top-10 ids are ours too, each logit within 0.1 of the golden's. */
    static boolean topTenAgrees(float[] logits, JsonNode top) {
        Set<Integer> want = new HashSet<>();
        for (JsonNode e : top) {
            int id = e.get(0).asInt();
            want.add(id);
            if (Math.abs(logits[id] - e.get(1).asDouble()) > 0.1) {
                return false;
            }
        }
        Integer[] order = new Integer[logits.length];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        java.util.Arrays.sort(order, (a, b) -> Float.compare(logits[b], logits[a]));
        for (int i = 0; i < want.size(); i++) {
            if (!want.contains(order[i])) {
                return false;
            }
        }
        return true;
    }
}
