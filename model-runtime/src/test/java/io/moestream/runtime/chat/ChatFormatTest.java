package io.moestream.runtime.chat;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.moestream.runtime.gguf.GgmlType;
import io.moestream.runtime.model.FinishReason;
import io.moestream.runtime.model.GenerationRequest;
import io.moestream.runtime.model.GenerationResult;
import io.moestream.runtime.model.Model;
import io.moestream.runtime.sampler.SamplingParams;
import io.moestream.runtime.sched.Request;
import io.moestream.runtime.synthetic.SyntheticModels;
import io.moestream.runtime.synthetic.SyntheticSpec;
import io.moestream.runtime.tokenizer.Tokenizer;
import io.moestream.runtime.Fixtures;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A GGUF with a ChatML template and control tokens: rendering, special-token parsing, end-of-generation stops. */
class ChatFormatTest {

    static final int IM_START = 768;
    static final int IM_END = 769;

    @TempDir
    static Path dir;
    static Model model;

    @BeforeAll
    static void load() throws IOException {
        Path f = dir.resolve("chat.gguf");
        SyntheticModels.writeChat(SyntheticSpec.tiny(3), GgmlType.F32, f);
        model = Model.load(f);
    }

    @AfterAll
    static void close() {
        model.close();
    }

    @Test
    void theRenderedConversationIsTokenizedWithItsControlTokens() throws IOException {
        ChatFormat chat = ChatFormat.of(model.gguf(), model.tokenizer()).orElseThrow();
        List<Map<String, Object>> messages = List.of(ChatFormat.message("system", "Be brief."),
                ChatFormat.message("user", "Hi"));
        String text = chat.render(messages, Map.of());
        assertThat(text).isEqualTo("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                + "<|im_start|>assistant\n");
        int[] ids = chat.encode(messages, Map.of());
        Tokenizer t = model.tokenizer();
        assertThat(ids[0]).as("BOS, as the model asks").isEqualTo(t.bosId());
        assertThat(Arrays.stream(ids).filter(i -> i == IM_START).count()).isEqualTo(3);
        assertThat(Arrays.stream(ids).filter(i -> i == IM_END).count()).isEqualTo(2);
        int[] plain = t.encodePrompt(text);
        assertThat(plain).as("plain prompts keep the control tokens' text as bytes").doesNotContain(IM_START, IM_END);
        assertThat(t.decode(plain)).isEqualTo(text);
        int[] between = Arrays.copyOfRange(ids, 2, 2 + t.encode("system\nBe brief.", false).length);
        assertThat(between).containsExactly(t.encode("system\nBe brief.", false));
    }

    @Test
    void everyEndOfGenerationTokenTheModelDeclaresStopsTheRequest() {
        Tokenizer t = model.tokenizer();
        assertThat(t.isEndOfGeneration(t.eosId())).isTrue();
        assertThat(t.isEndOfGeneration(IM_END)).isTrue();
        assertThat(t.isEndOfGeneration(IM_START)).isFalse();
        assertThat(t.isEndOfGeneration('a')).isFalse();
        int hello = t.encode("Hello", false)[0];
        for (int stop : new int[] {IM_END, t.eosId()}) {
            Request r = Request.generate("t", new GenerationRequest(model.newCache(), new int[] {t.bosId()},
                    SamplingParams.greedy(8), false), t);
            r.computed(1, logitsPeakingAt(hello), 0);
            r.chunk(1);
            r.computed(1, logitsPeakingAt(stop), 0);
            assertThat(r.finished()).isTrue();
            GenerationResult result = r.result();
            assertThat(result.finishReason()).isEqualTo(FinishReason.STOP);
            assertThat(result.tokenIds()).containsExactly(hello);
            assertThat(result.text()).isEqualTo(t.decode(new int[] {hello}));
            assertThat(r.sampled()).isEqualTo(2);
        }
        Request ignoring = Request.generate("t", new GenerationRequest(model.newCache(), new int[] {t.bosId()},
                SamplingParams.greedy(8), false), t).ignoreEos();
        ignoring.computed(1, logitsPeakingAt(IM_END), 0);
        assertThat(ignoring.finished()).as("ignoreEos samples end-of-generation tokens like others").isFalse();
    }

    private static float[] logitsPeakingAt(int id) {
        float[] logits = new float[model.tokenizer().vocabSize()];
        logits[id] = 10f;
        return logits;
    }

    @Test
    void reasoningIsSplitOffAtTheThinkMarkersOfTemplatesThatHaveThem() throws IOException {
        Tokenizer t = model.tokenizer();
        ChatFormat thinking = new ChatFormat(SyntheticModels.CHATML_TEMPLATE
                + "{% if add_generation_prompt and enable_thinking is false %}{{ '<think>\\n\\n</think>\\n\\n' }}{% endif %}", t);
        assertThat(thinking.thinks()).isTrue();
        assertThat(thinking.render(List.of(ChatFormat.message("user", "Hi")), Map.of("enable_thinking", false)))
                .endsWith("<|im_start|>assistant\n<think>\n\n</think>\n\n");
        assertThat(thinking.split("<think>\nThe user wants a colour.\n</think>\n\nBlue."))
                .isEqualTo(new ChatFormat.Answer("Blue.", "The user wants a colour."));
        assertThat(thinking.split("The generation prompt opened it.\n</think>\n\nBlue."))
                .isEqualTo(new ChatFormat.Answer("Blue.", "The generation prompt opened it."));
        assertThat(thinking.split("<think>\nCut by max_tokens"))
                .isEqualTo(new ChatFormat.Answer("", "Cut by max_tokens"));
        assertThat(thinking.split("Blue.")).isEqualTo(new ChatFormat.Answer("Blue.", null));
        assertThat(thinking.split("<|im_start|>assistant\n<think>\n", "Cut short while thinking"))
                .as("the generation prompt opened the think block").isEqualTo(new ChatFormat.Answer("", "Cut short while thinking"));
        assertThat(thinking.split("<|im_start|>assistant\n<think>\n\n</think>\n\n", "Blue."))
                .as("thinking switched off").isEqualTo(new ChatFormat.Answer("Blue.", null));

        ChatFormat chatml = ChatFormat.of(model.gguf(), t).orElseThrow();
        assertThat(chatml.thinks()).isFalse();
        assertThat(chatml.split("<think>x</think>y")).isEqualTo(new ChatFormat.Answer("<think>x</think>y", null));
    }

    @Test
    void qwen3sTemplateThinksAndQwen25sDoesNot() throws IOException {
        Path oracle = Fixtures.sharedOracle();
        assumeTrue(oracle != null, "no ../shared beside the repository");
        Path templates = oracle.resolveSibling("chat-templates").resolve("templates");
        Tokenizer t = model.tokenizer();
        assertThat(new ChatFormat(Files.readString(templates.resolve("Qwen-Qwen3-0.6B.jinja")), t).thinks()).isTrue();
        assertThat(new ChatFormat(Files.readString(templates.resolve("Qwen-Qwen2.5-7B-Instruct.jinja")), t).thinks()).isFalse();
    }
}
