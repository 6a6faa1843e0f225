package io.moestream.operators;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moestream.runtime.sampler.SamplingParams;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import org.junit.jupiter.api.Test;

/** The engine the SQL model provider shares: concurrent prompts join the same steps and get the answers they get alone. */
class SharedEngineTest {

    private static final List<String> PROMPTS = List.of("Hello", "What is a list?", "Tell me about Flink.",
            "Why is the sky blue?", "Name three colors.", "Count to five.");

    @Test
    void concurrentPromptsShareStepsAndGetTheAnswersTheyGetAlone() throws Exception {
        InferenceConfig config = InferenceConfig.defaults(InferenceConfig.BUNDLED_MODEL).withBackend("cpu")
                .withMaxSequences(8);
        SharedEngine engine = SharedEngine.acquire(config);
        SharedEngine again = SharedEngine.acquire(config);
        try {
            assertThat(again).isSameAs(engine); // one engine per configuration per JVM
            long before = engine.steps();
            List<CompletableFuture<SharedEngine.Answer>> together = new ArrayList<>();
            for (int i = 0; i < PROMPTS.size(); i++) {
                together.add(engine.submit(PROMPTS.get(i), params(i)));
            }
            List<SharedEngine.Answer> batched = new ArrayList<>();
            for (CompletableFuture<SharedEngine.Answer> f : together) {
                batched.add(f.get());
            }
            long batchedSteps = engine.steps() - before;

            long start = engine.steps();
            for (int i = 0; i < PROMPTS.size(); i++) {
                assertThat(engine.submit(PROMPTS.get(i), params(i)).get()).as(PROMPTS.get(i)).isEqualTo(batched.get(i));
            }
            long aloneSteps = engine.steps() - start;

            assertThat(batched).allSatisfy(a -> assertThat(a.completionTokens()).isBetween(1, 10));
            assertThat(batchedSteps).isLessThan(aloneSteps);
        } finally {
            again.release();
            engine.release();
        }
    }

    @Test
    void badPromptsFailTheirOwnFutureOnly() throws Exception {
        SharedEngine engine = SharedEngine.acquire(InferenceConfig.defaults(InferenceConfig.BUNDLED_MODEL).withBackend("cpu")
                .withMaxSequences(4));
        try {
            CompletableFuture<SharedEngine.Answer> none = engine.submit(null, params(0));
            CompletableFuture<SharedEngine.Answer> tooLong = engine.submit("word ".repeat(20_000), params(1));
            CompletableFuture<SharedEngine.Answer> fine = engine.submit("Hello", params(2));
            assertThatThrownBy(none::get).isInstanceOf(ExecutionException.class)
                    .hasCauseInstanceOf(SharedEngine.BadPromptException.class).hasMessageContaining("the prompt is null");
            assertThatThrownBy(tooLong::get).hasCauseInstanceOf(SharedEngine.BadPromptException.class)
                    .hasMessageContaining("but the context window is");
            assertThat(fine.get().completionTokens()).isPositive();
        } finally {
            engine.release();
        }
    }

    private static SamplingParams params(int i) {
        return new SamplingParams(10, 0.8f, 0, 1f, 1000 + i, List.of());
    }
}
