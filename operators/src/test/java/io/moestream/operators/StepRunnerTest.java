package io.moestream.operators;

import io.moestream.runtime.model.Engine;
import io.moestream.runtime.model.KvCache;
import io.moestream.runtime.model.Model;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/** The batched step runner the job uses against the one-chunk-at-a-time reference. */
class StepRunnerTest {

    private final Model model = Reference.get().model;

    @Test
    void aBatchedStepGivesTheLogitsOfRunningEachChunkAlone() {
        Engine engine = new Engine(model);
        int[] promptA = model.tokenizer().encodePrompt("The quick brown fox");
        int[] promptB = model.tokenizer().encodePrompt("Permission is hereby granted");

        // state before the step: A has decoded a little, B has not started
        KvCache a1 = model.newCache();
        KvCache a2 = model.newCache();
        engine.forward(a1, promptA);
        engine.forward(a2, promptA);
        KvCache b1 = model.newCache();
        KvCache b2 = model.newCache();

        StepRunner.Outcome batched = StepRunner.batched(engine).step(List.of(
                new StepRunner.Chunk(a1, new int[] {42}, true),
                new StepRunner.Chunk(b1, promptB, true)));
        StepRunner.Outcome single = StepRunner.forward(engine).step(List.of(
                new StepRunner.Chunk(a2, new int[] {42}, true),
                new StepRunner.Chunk(b2, promptB, true)));

        assertThat(batched.failures()).containsOnlyNulls();
        for (int i = 0; i < 2; i++) {
            float[] expected = single.logits()[i];
            float[] actual = batched.logits()[i];
            assertThat(actual).hasSameSizeAs(expected);
            for (int v = 0; v < expected.length; v++) {
                assertThat(actual[v]).isCloseTo(expected[v], within(1e-4f));
            }
        }
        assertThat(a1.tokens()).isEqualTo(a2.tokens());
        assertThat(b1.tokens()).isEqualTo(b2.tokens());
    }

    @Test
    void aChunkTheEngineRefusesFailsAloneAndTheOthersStillRun() {
        Engine engine = new Engine(model);
        KvCache ok = model.newCache();
        KvCache full = model.newCache();
        int[] tooMany = new int[model.contextLength() + 1];

        StepRunner.Outcome outcome = StepRunner.batched(engine).step(List.of(
                new StepRunner.Chunk(ok, model.tokenizer().encodePrompt("Hello world"), true),
                new StepRunner.Chunk(full, tooMany, true)));

        assertThat(outcome.failures()[0]).isNull();
        assertThat(outcome.logits()[0]).isNotNull();
        assertThat(outcome.failures()[1]).isInstanceOf(IllegalArgumentException.class);
        assertThat(full.length()).isZero();
        assertThat(ok.length()).isEqualTo(model.tokenizer().encodePrompt("Hello world").length);
    }
}
