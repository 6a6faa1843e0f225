package io.moestream.runtime.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import io.moestream.runtime.Fixtures;
import io.moestream.runtime.gguf.GgufFile;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Tokenizer parity with llama-tokenize on the six oracle prompts. */
class TokenizerTest {

    static BpeTokenizer gpt2;

    @BeforeAll
    static void load() throws IOException {
        gpt2 = BpeTokenizer.from(GgufFile.open(Fixtures.model(Fixtures.TINY_LLAMA)));
    }

    @Test
    void gpt2PreTokenizerMatchesLlamaCppOnAllPrompts() {
        JsonNode prompts = Fixtures.golden(Fixtures.TINY_LLAMA).get("prompts");
        assertThat(prompts).hasSize(6);
        assertThat(gpt2.addBosByDefault()).isTrue();
        for (JsonNode p : prompts) {
            String text = p.get("text").asText();
            int[] expected = Fixtures.ints(p.get("token_ids"));
            assertThat(gpt2.encodePrompt(text)).as(text).containsExactly(expected);
            assertThat(gpt2.decode(Arrays.copyOfRange(expected, 1, expected.length))).isEqualTo(text);
        }
    }

    @Test
    void qwen2PreTokenizerMatchesLlamaCppOnAllPrompts() {
        BpeTokenizer qwen = gpt2.withPreTokenizer(PreTokenizer.QWEN2, false);
        for (JsonNode p : Fixtures.golden("tiny-qwen3moe-tokens").get("prompts")) {
            assertThat(qwen.encodePrompt(p.get("text").asText())).as(p.get("text").asText())
                    .containsExactly(Fixtures.ints(p.get("token_ids")));
        }
    }

    @Test
    void specialTokensAreControlAndNotParsedFromText() {
        assertThat(gpt2.bosId()).isEqualTo(766);
        assertThat(gpt2.eosId()).isEqualTo(767);
        assertThat(gpt2.tokenBytes(766)).isEmpty();
        assertThat(gpt2.tokenBytes(32)).containsExactly(' ');
        assertThat(gpt2.encode("<|eos|>", false)).doesNotContain(767);
        assertThat(gpt2.decode(new int[] {766, 72, 105, 767})).isEqualTo("Hi");
    }

    @Test
    void whitespaceAndEmojiAreLossless() {
        for (String s : new String[] {"a \n b", "  ", "x\n\n\ty  ", "😀😀 é", "\u00a0nbsp", ""}) {
            assertThat(gpt2.decode(gpt2.encode(s, false))).isEqualTo(s);
            assertThat(gpt2.withPreTokenizer(PreTokenizer.QWEN2, false).decode(gpt2.encode(s, false))).isEqualTo(s);
        }
    }

    @Test
    void detokenizerHoldsBackIncompleteCharacters() {
        byte[] emoji = "😀".getBytes(StandardCharsets.UTF_8);
        Detokenizer d = new Detokenizer(gpt2);
        d.add('a');
        for (int i = 0; i < emoji.length - 1; i++) {
            d.add(emoji[i] & 0xFF); // byte tokens: id == byte value
            assertThat(d.text()).isEqualTo("a");
        }
        d.add(emoji[emoji.length - 1] & 0xFF);
        assertThat(d.text()).isEqualTo("a😀");
        d.add(0xC3);
        assertThat(d.text()).isEqualTo("a😀");
        assertThat(d.finish()).isEqualTo("a😀\uFFFD");
    }

    @Test
    void unknownPreTokenizerIsNamed() {
        assertThatThrownBy(() -> PreTokenizer.forName("deepseek-llm")).hasMessageContaining("'deepseek-llm'");
    }
}
