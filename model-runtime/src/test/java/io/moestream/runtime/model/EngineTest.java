package io.moestream.runtime.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moestream.runtime.Fixtures;
import io.moestream.runtime.sampler.SamplingParams;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class EngineTest {

    static Model model;

    @BeforeAll
    static void load() throws IOException {
        model = Model.load(Fixtures.model(Fixtures.TINY_MIXTRAL));
    }

    static final String[] PROMPTS = {"Once upon a time", "The quick brown fox", "Permission is hereby granted", "Hello"};
    static final SamplingParams[] PARAMS = {
        SamplingParams.greedy(12),
        new SamplingParams(20, 0.8f, 0, 1f, 42L, List.of()),
        new SamplingParams(7, 1.2f, 40, 0.9f, 7L, List.of()),
        new SamplingParams(16, 0.5f, 5, 1f, 3L, List.of()),
    };

    private List<GenerationRequest> requests(boolean commit) {
        List<GenerationRequest> out = new ArrayList<>();
        for (int i = 0; i < PROMPTS.length; i++) {
            out.add(new GenerationRequest(model.newCache(), model.tokenizer().encodePrompt(PROMPTS[i]), PARAMS[i], commit));
        }
        return out;
    }

    @Test
    void batchedGenerateEqualsOneAtATime() {
        List<GenerationRequest> batch = requests(false);
        List<GenerationResult> together = new Engine(model).generate(batch);
        List<GenerationRequest> single = requests(false);
        for (int i = 0; i < single.size(); i++) {
            GenerationResult alone = new Engine(model).generate(List.of(single.get(i))).get(0);
            assertThat(together.get(i).tokenIds()).as("request " + i).containsExactly(alone.tokenIds());
            assertThat(together.get(i).text()).isEqualTo(alone.text());
            assertThat(together.get(i).finishReason()).isEqualTo(alone.finishReason());
            assertThat(batch.get(i).cache().tokens()).containsExactly(single.get(i).cache().tokens());
        }
        assertThat(together.get(0).finishReason()).isEqualTo(FinishReason.LENGTH);
        assertThat(together.get(0).tokenIds()).hasSize(12);
        assertThat(together.get(0).prefillNanos()).isPositive();
    }

    @Test
    void sameSeedReplaysTheSameTextOtherSeedsDiffer() {
        int[] prompt = model.tokenizer().encodePrompt("Permission is hereby granted");
        java.util.function.LongFunction<GenerationResult> run = seed -> new Engine(model).generate(List.of(new GenerationRequest(
                model.newCache(), prompt, new SamplingParams(24, 1.0f, 50, 0.95f, seed, List.of()), false))).get(0);
        GenerationResult a = run.apply(1234L);
        GenerationResult replay = run.apply(1234L);
        assertThat(replay.tokenIds()).containsExactly(a.tokenIds());
        assertThat(replay.text()).isEqualTo(a.text());
        assertThat(run.apply(99L).tokenIds()).isNotEqualTo(a.tokenIds());
    }

    @Test
    void moreRequestsThanTheTokenBudgetStillMatchOneAtATime() {
        List<GenerationRequest> batch = new ArrayList<>();
        List<GenerationRequest> single = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            // prompts longer than the step budget together: prefill is chunked and mixed with decodes
            StringBuilder text = new StringBuilder();
            for (int j = 0; j <= i; j++) {
                text.append("Permission is hereby granted, free of charge, to any person obtaining a copy of this software. ");
            }
            int[] prompt = model.tokenizer().encodePrompt(text.toString().repeat(3));
            batch.add(new GenerationRequest(model.newCache(), prompt, SamplingParams.greedy(5 + i), false));
            single.add(new GenerationRequest(model.newCache(), prompt, SamplingParams.greedy(5 + i), false));
        }
        assertThat(batch.stream().mapToInt(r -> r.promptIds().length).sum()).isGreaterThan(Generation.TOKEN_BUDGET);
        List<GenerationResult> together = new Engine(model).generate(batch);
        for (int i = 0; i < single.size(); i++) {
            assertThat(together.get(i).tokenIds()).containsExactly(new Engine(model).generate(List.of(single.get(i))).get(0).tokenIds());
            assertThat(together.get(i).prefillNanos()).isPositive();
        }
    }

    @Test
    void greedyGenerateMatchesTheGolden() {
        var prompt = Fixtures.golden(Fixtures.TINY_MIXTRAL).get("prompts").get(1);
        int[] golden = Fixtures.ints(prompt.get("greedy_ids"));
        int eosAt = indexOf(golden, model.tokenizer().eosId());
        int n = eosAt < 0 ? golden.length : eosAt;
        GenerationResult r = new Engine(model).generate(List.of(new GenerationRequest(model.newCache(),
                Fixtures.ints(prompt.get("token_ids")), SamplingParams.greedy(n), false))).get(0);
        assertThat(r.tokenIds()).containsExactly(java.util.Arrays.copyOf(golden, n));
        assertThat(r.text()).isEqualTo(model.tokenizer().decode(r.tokenIds()));
    }

    @Test
    void commitAnswerDecidesWhetherTheLastTokenIsCached() {
        int[] prompt = model.tokenizer().encodePrompt("Hello");
        for (boolean commit : new boolean[] {true, false}) {
            KvCache cache = model.newCache();
            GenerationResult r = new Engine(model).generate(List.of(new GenerationRequest(cache, prompt, SamplingParams.greedy(5), commit))).get(0);
            assertThat(r.tokenIds()).hasSize(5);
            assertThat(cache.length()).isEqualTo(prompt.length + (commit ? 5 : 4));
            int[] expected = new int[prompt.length + 5];
            System.arraycopy(prompt, 0, expected, 0, prompt.length);
            System.arraycopy(r.tokenIds(), 0, expected, prompt.length, 5);
            assertThat(cache.tokens()).containsExactly(java.util.Arrays.copyOf(expected, cache.length()));
        }
    }

    @Test
    void stopSequenceCutsTheText() {
        int[] prompt = model.tokenizer().encodePrompt("The quick brown fox");
        GenerationResult free = new Engine(model).generate(List.of(new GenerationRequest(model.newCache(), prompt, SamplingParams.greedy(20), false))).get(0);
        String text = free.text();
        String stop = text.substring(6, 9);
        int cut = text.indexOf(stop);
        GenerationResult stopped = new Engine(model).generate(List.of(new GenerationRequest(model.newCache(), prompt,
                new SamplingParams(20, 0f, 0, 1f, 0L, List.of("never-there", stop)), false))).get(0);
        assertThat(stopped.finishReason()).isEqualTo(FinishReason.STOP_SEQUENCE);
        assertThat(stopped.text()).isEqualTo(text.substring(0, cut));
        assertThat(stopped.tokenIds().length).isLessThan(free.tokenIds().length);
    }

    @Test
    void rejectsWhatDoesNotFit() {
        Engine engine = new Engine(model);
        int[] prompt = {766, 72};
        assertThatThrownBy(() -> engine.generate(List.of(new GenerationRequest(model.newCache(), prompt,
                SamplingParams.greedy(model.contextLength()), false))))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("context length 2048");
        assertThatThrownBy(() -> engine.forward(model.newCache(), new int[] {768}))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("token id 768");
        KvCache shared = model.newCache();
        assertThatThrownBy(() -> engine.generate(List.of(new GenerationRequest(shared, prompt, SamplingParams.greedy(1), false),
                new GenerationRequest(shared, prompt, SamplingParams.greedy(1), false))))
                .hasMessageContaining("share a KV cache");
        assertThatThrownBy(() -> engine.generate(List.of(new GenerationRequest(model.newCache(), new int[0], SamplingParams.greedy(1), false))))
                .hasMessageContaining("empty prompt");
    }

    @Test
    void prefillInPiecesEqualsPrefillAtOnce() {
        int[] prompt = model.tokenizer().encodePrompt("Permission is hereby granted, free of charge");
        Engine engine = new Engine(model);
        float[] whole = engine.forward(model.newCache(), prompt);
        KvCache cache = model.newCache();
        engine.forward(cache, java.util.Arrays.copyOf(prompt, 5));
        float[] pieces = engine.forward(cache, java.util.Arrays.copyOfRange(prompt, 5, prompt.length));
        assertThat(pieces).containsExactly(whole);
    }

    private static int indexOf(int[] a, int v) {
        for (int i = 0; i < a.length; i++) {
            if (a[i] == v) {
                return i;
            }
        }
        return -1;
    }
}
