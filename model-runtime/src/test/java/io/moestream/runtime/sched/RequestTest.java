package io.moestream.runtime.sched;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moestream.runtime.Fixtures;
import io.moestream.runtime.model.Engine;
import io.moestream.runtime.model.FinishReason;
import io.moestream.runtime.model.GenerationRequest;
import io.moestream.runtime.model.GenerationResult;
import io.moestream.runtime.model.KvCache;
import io.moestream.runtime.model.Model;
import io.moestream.runtime.model.StepPlan;
import io.moestream.runtime.sampler.SamplingParams;
import java.io.IOException;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The request lifecycle: chunks, sampling, finish rules, committed answers and prefill-only parts. */
class RequestTest {

    private static Model model;

    @BeforeAll
    static void load() throws IOException {
        model = Model.load(Fixtures.model(Fixtures.TINY_GROUPMOE));
    }

    @AfterAll
    static void close() {
        model.close();
    }

    private static int[] prompt() {
        return Fixtures.ints(Fixtures.golden(Fixtures.TINY_GROUPMOE).get("prompts").get(0).get("token_ids"));
    }

    @Test
    void aPrefillOnlyRequestAppendsItsTokensAndSamplesNothing() {
        KvCache cache = model.newCache();
        Request part = Request.prefill("t", cache, prompt());
        assertThat(part.decoding()).isFalse();
        StepPlan.Sequence chunk = part.chunk(prompt().length);
        assertThat(chunk.logits()).isFalse();
        assertThatThrownBy(() -> part.chunk(prompt().length + 1)).isInstanceOf(IllegalArgumentException.class);
        Batch.run(new Engine(model), StepPlanner.singleTenant(8, 1), List.of(part));
        assertThat(part.finished()).isTrue();
        assertThat(part.tokensWanted()).isZero();
        assertThat(cache.length()).isEqualTo(prompt().length);
        assertThatThrownBy(part::result).isInstanceOf(IllegalStateException.class);
    }

    @Test
    void aCommittedAnswerLeavesTheWholeTurnInTheCache() {
        KvCache committed = model.newCache();
        KvCache plain = model.newCache();
        Request turn = Request.generate("t", new GenerationRequest(committed, prompt(), SamplingParams.greedy(5), true),
                model.tokenizer());
        Request alone = Request.generate("t", new GenerationRequest(plain, prompt(), SamplingParams.greedy(5), false),
                model.tokenizer());
        Batch.run(new Engine(model), StepPlanner.singleTenant(64, 2), List.of(turn, alone));
        GenerationResult r = turn.result();
        assertThat(r.tokenIds()).containsExactly(alone.result().tokenIds());
        int fed = r.tokenIds().length + (r.finishReason() == FinishReason.STOP ? 1 : 0);
        assertThat(committed.length()).isEqualTo(prompt().length + fed);
        assertThat(plain.length()).isEqualTo(prompt().length + r.tokenIds().length - (r.finishReason() == FinishReason.STOP ? 0 : 1));
    }

    @Test
    void aStopSequenceCutsTheTextAndEndsTheRequest() {
        Request first = Request.generate("t", new GenerationRequest(model.newCache(), prompt(), SamplingParams.greedy(12), false),
                model.tokenizer()).ignoreEos();
        Batch.run(new Engine(model), StepPlanner.singleTenant(64, 1), List.of(first));
        String text = first.result().text();
        assertThat(first.result().finishReason()).isEqualTo(FinishReason.LENGTH);
        assertThat(text.length()).isGreaterThan(3);
        String stop = text.substring(text.length() / 2, text.length() / 2 + 2);
        Request stopped = Request.generate("t", new GenerationRequest(model.newCache(), prompt(),
                new SamplingParams(12, 0f, 0, 1f, 0L, List.of(stop)), false), model.tokenizer()).ignoreEos();
        Batch.run(new Engine(model), StepPlanner.singleTenant(64, 1), List.of(stopped));
        assertThat(stopped.result().finishReason()).isEqualTo(FinishReason.STOP_SEQUENCE);
        assertThat(stopped.result().text()).isEqualTo(text.substring(0, text.indexOf(stop)));
    }
}
