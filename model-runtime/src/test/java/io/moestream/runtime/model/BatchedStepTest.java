package io.moestream.runtime.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import io.moestream.runtime.Fixtures;
import io.moestream.runtime.sampler.Sampler;
import io.moestream.runtime.sampler.SamplingParams;
import io.moestream.runtime.sched.Batch;
import io.moestream.runtime.sched.Request;
import io.moestream.runtime.sched.StepPlanner;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

/**
 * A batched {@link Engine#step} equals running each sequence alone, bit for bit, with prefill chunks
 * and decode tokens mixed (the planner never cuts a prompt into a lone token, which would take the
 * decode kernels).
 */
class BatchedStepTest {

    static Model groupmoe;

    @BeforeAll
    static void load() throws IOException {
        groupmoe = Model.load(Fixtures.model(Fixtures.TINY_GROUPMOE));
    }

    private static int[][] prompts(String stem) {
        JsonNode ps = Fixtures.golden(stem).get("prompts");
        int[][] out = new int[ps.size()][];
        for (int i = 0; i < out.length; i++) {
            out[i] = Fixtures.ints(ps.get(i).get("token_ids"));
        }
        return out;
    }

    /** Greedy decoding of one sequence alone: the logits before each of {@code n} tokens. */
    private static List<float[]> alone(Model m, int[] prompt, int n) {
        Engine e = new Engine(m);
        KvCache cache = m.newCache();
        List<float[]> out = new ArrayList<>();
        float[] logits = e.forward(cache, prompt);
        for (int i = 0; i < n; i++) {
            out.add(logits);
            if (i + 1 < n) {
                logits = e.forward(cache, new int[] {Sampler.argmax(logits)});
            }
        }
        return out;
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {Fixtures.TINY_GROUPMOE, Fixtures.TINY_QWEN2MOE, Fixtures.TINY_LLAMA})
    void scheduledBatchWithChunkedPrefillEqualsEachSequenceAlone(String stem) throws IOException {
        Model m = stem.equals(Fixtures.TINY_GROUPMOE) ? groupmoe : Model.load(Fixtures.model(stem));
        int[][] prompts = prompts(stem);
        int gen = 6;
        // a small budget forces chunked prefill of the 316-token prompt alongside decodes of the others
        KvCache[] caches = new KvCache[prompts.length];
        List<List<float[]>> logits = new ArrayList<>();
        List<Request> requests = new ArrayList<>();
        for (int p = 0; p < prompts.length; p++) {
            caches[p] = m.newCache();
            List<float[]> seen = new ArrayList<>();
            logits.add(seen);
            requests.add(Request.generate("", new GenerationRequest(caches[p], prompts[p], SamplingParams.greedy(gen), false),
                    m.tokenizer()).ignoreEos().observer(new Request.Observer() {
                        @Override
                        public void logits(float[] l) {
                            seen.add(l);
                        }
                    }));
        }
        int longest = Arrays.stream(prompts).mapToInt(p -> p.length).max().orElseThrow();
        int steps = Batch.run(new Engine(m), StepPlanner.singleTenant(37, 4), requests);
        assertThat(steps).isGreaterThan(longest / 37); // the longest prompt was cut into chunks
        for (int p = 0; p < prompts.length; p++) {
            List<float[]> expected = alone(m, prompts[p], gen);
            for (int i = 0; i < gen; i++) {
                float[] got = logits.get(p).get(i);
                assertThat(Sampler.argmax(got)).as("prompt %d token %d", p, i).isEqualTo(Sampler.argmax(expected.get(i)));
                assertThat(got).as("prompt %d token %d, bit for bit", p, i).containsExactly(expected.get(i));
            }
            assertThat(caches[p].length()).isEqualTo(prompts[p].length + gen - 1);
        }
    }

    @Test
    void generateBatchReproducesTheGoldenGreedyTokensOfAllPrompts() {
        JsonNode ps = Fixtures.golden(Fixtures.TINY_GROUPMOE).get("prompts");
        List<GenerationRequest> reqs = new ArrayList<>();
        List<int[]> expected = new ArrayList<>();
        for (JsonNode p : ps) {
            int[] golden = Fixtures.ints(p.get("greedy_ids"));
            int n = golden.length;
            for (int i = 0; i < golden.length; i++) {
                if (golden[i] == groupmoe.tokenizer().eosId()) {
                    n = i;
                    break;
                }
            }
            expected.add(Arrays.copyOf(golden, Math.max(1, n)));
            reqs.add(new GenerationRequest(groupmoe.newCache(), Fixtures.ints(p.get("token_ids")), SamplingParams.greedy(Math.max(1, n)), false));
        }
        List<GenerationResult> results = new Engine(groupmoe).generate(reqs);
        for (int i = 0; i < results.size(); i++) {
            if (expected.get(i).length > 0 && expected.get(i)[0] != groupmoe.tokenizer().eosId()) {
                assertThat(results.get(i).tokenIds()).as("prompt " + i).containsExactly(expected.get(i));
            }
        }
    }

    @Test
    void stepValidatesItsPlan() {
        Engine e = new Engine(groupmoe);
        KvCache cache = groupmoe.newCache();
        assertThatThrownBy(() -> e.step(StepPlan.of(new StepPlan.Sequence(cache, new int[] {1}, true),
                new StepPlan.Sequence(cache, new int[] {2}, true)))).hasMessageContaining("share a KV cache");
        assertThatThrownBy(() -> e.step(StepPlan.of(new StepPlan.Sequence(cache, new int[0], true))))
                .hasMessageContaining("at least one token");
        assertThatThrownBy(() -> e.step(StepPlan.of(new StepPlan.Sequence(cache, new int[] {-1}, true))))
                .hasMessageContaining("token id -1");
        assertThat(cache.length()).isZero();
        StepResult r = e.step(StepPlan.of(new StepPlan.Sequence(cache, new int[] {766, 72}, false)));
        assertThat(r.logits(0)).isNull();
        assertThat(cache.length()).isEqualTo(2);
    }
}
