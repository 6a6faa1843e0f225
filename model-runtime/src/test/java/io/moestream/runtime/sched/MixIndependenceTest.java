package io.moestream.runtime.sched;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.moestream.runtime.Fixtures;
import io.moestream.runtime.kv.KvCodec;
import io.moestream.runtime.model.Engine;
import io.moestream.runtime.model.GenerationRequest;
import io.moestream.runtime.model.GenerationResult;
import io.moestream.runtime.model.KvCache;
import io.moestream.runtime.model.Model;
import io.moestream.runtime.sampler.SamplingParams;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * A request's tokens and logits do not depend on what shares its steps: the same seeded request
 * run alone and inside five different mixes (other requests, tenants, token and attention-work
 * budgets, so its prompt is cut into different chunks and its decode tokens share steps with
 * others' prefills)
 * gives the same tokens and the same logits, bit for bit, with a float32 and an int8 KV cache; on a
 * Q8_0 model and on the bundled Q4_K_M one, whose repacked Q4_K products sum a prefill row in one of
 * two orders depending on its place in its chunk.
 */
class MixIndependenceTest {

    private static final int BLOCK_TOKENS = 32;

    private static final Map<String, Model> MODELS = new TreeMap<>();

    private Model model;
    private int[][] prompts;

    private void load(String name) throws IOException {
        model = MODELS.get(name);
        if (model == null) {
            model = name.equals("bundled") ? Model.loadDefault() : Model.load(Fixtures.model(name));
            MODELS.put(name, model);
        }
        JsonNode ps = Fixtures.golden(name.equals("bundled") ? "trained-moe-q4_k_m" : name).get("prompts");
        prompts = new int[ps.size()][];
        for (int i = 0; i < prompts.length; i++) {
            prompts[i] = Fixtures.ints(ps.get(i).get("token_ids"));
        }
    }

    @AfterAll
    static void close() {
        MODELS.values().forEach(Model::close);
    }

    /** What one run of the request under test produced: its result and every logits vector it sampled from, as bits. */
    private record Run(GenerationResult result, List<int[]> logitBits) {}

    /** A mix: the planner, and the other requests with their tenants (the request under test is tenant "t"). */
    private record Mix(int tokenBudget, long workBudget, int maxSequences, double tenantShare, int position, String[] otherTenants) {}

    @ParameterizedTest(name = "{0} {1}")
    @CsvSource({Fixtures.TINY_GROUPMOE + ",f32", Fixtures.TINY_GROUPMOE + ",int8", "bundled,f32", "bundled,int8"})
    void theSameSeededRequestGivesTheSameBitsAloneAndInEveryMix(String modelName, String kvCodec) throws IOException {
        load(modelName);
        KvCodec codec = KvCodec.parse(kvCodec);
        int target = longestPrompt();
        Run alone = run(codec, target, new Mix(512, StepPlanner.UNBOUNDED_WORK, 1, 1.0, 0, new String[0]));
        assertThat(alone.result().tokenIds()).isNotEmpty();
        assertThat(alone.logitBits()).hasSize(alone.result().tokenIds().length
                + (alone.result().finishReason() == io.moestream.runtime.model.FinishReason.STOP ? 1 : 0));
        List<Mix> mixes = List.of(
                new Mix(7, StepPlanner.UNBOUNDED_WORK, 4, 1.0, 2, new String[] {"t", "t", "t"}),               // 7-token chunks beside 3 others
                new Mix(16, StepPlanner.UNBOUNDED_WORK, 3, 0.5, 1, new String[] {"u", "u", "v", "u"}),         // tenants share the prefill tokens
                new Mix(11, StepPlanner.UNBOUNDED_WORK, 6, 1.0, 5, new String[] {"t", "u", "t", "u", "t"}),    // admitted last, odd chunks
                // the first step has room for all of its prompt but one token
                new Mix(prompts[target].length - 1, StepPlanner.UNBOUNDED_WORK, 2, 1.0, 0, new String[] {"u"}),
                // an attention-work bound: chunks shrink as the prompt's cached positions grow, down to least chunks
                new Mix(64, 120, 3, 1.0, 1, new String[] {"u", "t"}));
        for (Mix mix : mixes) {
            Run mixed = run(codec, target, mix);
            assertThat(mixed.result().tokenIds()).as("tokens in %s", mix).containsExactly(alone.result().tokenIds());
            assertThat(mixed.result().text()).isEqualTo(alone.result().text());
            assertThat(mixed.result().finishReason()).isEqualTo(alone.result().finishReason());
            assertThat(mixed.logitBits()).hasSameSizeAs(alone.logitBits());
            for (int i = 0; i < alone.logitBits().size(); i++) {
                assertThat(mixed.logitBits().get(i)).as("logits before token %d in %s", i, mix)
                        .containsExactly(alone.logitBits().get(i));
            }
        }
    }

    private Run run(KvCodec codec, int target, Mix mix) {
        List<int[]> bits = new ArrayList<>();
        Request subject = request("t", prompts[target], new SamplingParams(10, 0.9f, 40, 0.95f, 1234L, List.of()), codec)
                .observer(new Request.Observer() {
                    @Override
                    public void logits(float[] logits) {
                        int[] b = new int[logits.length];
                        for (int i = 0; i < b.length; i++) {
                            b[i] = Float.floatToRawIntBits(logits[i]);
                        }
                        bits.add(b);
                    }
                });
        List<Request> requests = new ArrayList<>();
        for (int i = 0; i < mix.otherTenants().length; i++) {
            int[] prompt = prompts[(target + 1 + i) % prompts.length];
            requests.add(request(mix.otherTenants()[i], prompt,
                    new SamplingParams(3 + i, 0.7f, 0, 1f, 99L + i, List.of()), codec));
        }
        requests.add(Math.min(mix.position(), requests.size()), subject);
        Batch.run(new Engine(model), new StepPlanner(mix.tokenBudget(), mix.workBudget(), mix.maxSequences(), mix.tenantShare()), requests);
        return new Run(subject.result(), bits);
    }

    private Request request(String tenant, int[] prompt, SamplingParams params, KvCodec codec) {
        KvCache cache = model.newCache(codec, BLOCK_TOKENS);
        return Request.generate(tenant, new GenerationRequest(cache, prompt, params, false), model.tokenizer());
    }

    private int longestPrompt() {
        int best = 0;
        for (int i = 1; i < prompts.length; i++) {
            if (prompts[i].length > prompts[best].length) {
                best = i;
            }
        }
        return best;
    }
}
