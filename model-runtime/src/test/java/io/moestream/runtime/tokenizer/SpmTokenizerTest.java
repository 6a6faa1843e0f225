package io.moestream.runtime.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import io.moestream.runtime.Fixtures;
import io.moestream.runtime.SharedOracle;
import io.moestream.runtime.gguf.GgufFile;
import io.moestream.runtime.gguf.GgufFormatException;
import io.moestream.runtime.gguf.GgufWriter;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.function.Consumer;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * SentencePiece ({@code tokenizer.ggml.model = "llama"}) against llama.cpp: the oracle's 8 SPM prompts
 * (ids, pieces, detokenized greedy text of both goldens) and hand-made vocabularies written with
 * {@link GgufWriter} for the rules llama.cpp's {@code llm_tokenizer_spm} follows.
 */
class SpmTokenizerTest {

    static final String SPM = "tiny-spm-mixtral";
    static final String M = "\u2581";

    @TempDir
    Path dir;

    // ---- the oracle's SentencePiece model -------------------------------------------------------

    static SpmTokenizer oracleTokenizer() throws IOException {
        Tokenizer t = Tokenizer.from(GgufFile.open(SharedOracle.model(SPM + "-f32")));
        assertThat(t).isInstanceOf(SpmTokenizer.class);
        return (SpmTokenizer) t;
    }

    @Test
    void allEightPromptsGiveLlamaCppIds() throws IOException {
        SpmTokenizer spm = oracleTokenizer();
        JsonNode prompts = SharedOracle.golden("prompts-spm");
        JsonNode golden = SharedOracle.golden(SPM + "-f32").get("prompts");
        assertThat(golden).hasSize(8);
        int[] counts = new int[8];
        for (int p = 0; p < 8; p++) {
            JsonNode g = golden.get(p);
            String text = prompts.get(p).asText();
            assertThat(g.get("text").asText()).isEqualTo(text);
            int[] expected = Fixtures.ints(g.get("token_ids"));
            assertThat(spm.encodePrompt(text)).as(text).containsExactly(expected);
            counts[p] = expected.length;
            for (int i = 0; i < expected.length; i++) {
                assertThat(new String(spm.tokenPiece(expected[i], true), StandardCharsets.UTF_8))
                        .as("piece %d of %s", i, text).isEqualTo(g.get("token_pieces").get(i).asText());
            }
            int[] noBos = Arrays.copyOfRange(expected, 1, expected.length);
            assertThat(spm.encode(text, false)).containsExactly(noBos);
            assertThat(spm.decode(noBos)).isEqualTo(text);
            assertThat(spm.decode(expected)).isEqualTo(" " + text); // llama.cpp keeps the space after BOS
        }
        assertThat(counts).containsExactly(35, 28, 52, 30, 42, 306, 120, 70);
        // the CJK and emoji prompts really exercise byte fallback (ids 3..258 are <0x00>..<0xFF>)
        assertThat(Arrays.stream(Fixtures.ints(golden.get(6).get("token_ids"))).filter(id -> id >= 3 && id < 259).count()).isGreaterThan(50);
        assertThat(Arrays.stream(Fixtures.ints(golden.get(7).get("token_ids"))).filter(id -> id >= 3 && id < 259).count()).isGreaterThan(30);
    }

    @ParameterizedTest
    @ValueSource(strings = {"f32", "q8_0"})
    void greedyTokensDetokenizeToTheGoldenBytes(String type) throws IOException {
        SpmTokenizer spm = oracleTokenizer();
        for (JsonNode p : SharedOracle.golden(SPM + "-" + type).get("prompts")) {
            ByteArrayOutputStream special = new ByteArrayOutputStream();
            for (int id : Fixtures.ints(p.get("greedy_ids"))) {
                special.writeBytes(spm.tokenPiece(id, true));
            }
            assertThat(HexFormat.of().formatHex(special.toByteArray())).isEqualTo(p.get("greedy_text_hex").asText());
        }
    }

    @Test
    void oracleVocabularyKeys() throws IOException {
        SpmTokenizer spm = oracleTokenizer();
        SpmVocabulary v = spm.vocabulary();
        assertThat(v.size()).isEqualTo(1000);
        assertThat(new int[] {spm.bosId(), spm.eosId(), v.unknownId()}).containsExactly(1, 2, 0);
        assertThat(v.addBos()).isTrue();
        assertThat(v.addEos()).isFalse();
        assertThat(v.addSpacePrefix()).isTrue();
        assertThat(v.tokens().get(3 + 0xE2)).isEqualTo("<0xE2>");
        assertThat(spm.tokenBytes(3 + 0xE2)).containsExactly(0xE2);
        assertThat(spm.tokenBytes(1)).isEmpty();
        assertThat(spm.tokenPiece(0, true)).isEqualTo("<unk>".getBytes(StandardCharsets.UTF_8));
    }

    // ---- hand-made vocabularies -----------------------------------------------------------------

    /** A normal piece with its score, or a token of another type. */
    record Piece(String text, float score, int type) {
        static Piece normal(String text, float score) {
            return new Piece(text, score, SpmVocabulary.NORMAL);
        }
    }

    /** ids 0 {@code <unk>}, 1 {@code <s>}, 2 {@code </s>}, 3..258 {@code <0x00>..<0xFF>}, then {@code pieces}. */
    SpmTokenizer vocab(List<Piece> pieces, Consumer<GgufWriter> keys) throws IOException {
        List<Piece> all = new ArrayList<>(List.of(new Piece("<unk>", 0, SpmVocabulary.UNKNOWN),
                new Piece("<s>", 0, SpmVocabulary.CONTROL), new Piece("</s>", 0, SpmVocabulary.CONTROL)));
        for (int b = 0; b < 256; b++) {
            all.add(new Piece(String.format("<0x%02X>", b), 0, SpmVocabulary.BYTE));
        }
        all.addAll(pieces);
        return (SpmTokenizer) Tokenizer.from(open(all, keys));
    }

    GgufFile open(List<Piece> all, Consumer<GgufWriter> keys) throws IOException {
        float[] scores = new float[all.size()];
        int[] types = new int[all.size()];
        for (int i = 0; i < all.size(); i++) {
            scores[i] = all.get(i).score();
            types[i] = all.get(i).type();
        }
        GgufWriter w = new GgufWriter().putString("general.architecture", "llama")
                .putString("tokenizer.ggml.model", "llama")
                .putStringArray("tokenizer.ggml.tokens", all.stream().map(Piece::text).toList())
                .putFloat32Array("tokenizer.ggml.scores", scores)
                .putInt32Array("tokenizer.ggml.token_type", types);
        keys.accept(w);
        Path f = dir.resolve("vocab-" + System.nanoTime() + ".gguf");
        w.write(f);
        return GgufFile.open(f);
    }

    static final Consumer<GgufWriter> DEFAULTS = w -> {};

    @Test
    void controlTokensAreParsedOnlyWhenAskedAndEndOfTurnTokensEndGeneration() throws IOException {
        // 259 ▁, 260 a, 261 <|im_start|> (control), 262 <|im_end|> (control), 263 <|eot|> (control, declared EOT)
        SpmTokenizer t = vocab(List.of(Piece.normal(M, -1), Piece.normal("a", -2),
                new Piece("<|im_start|>", 0, SpmVocabulary.CONTROL), new Piece("<|im_end|>", 0, SpmVocabulary.CONTROL),
                new Piece("<|eot|>", 0, SpmVocabulary.CONTROL)), w -> w.putUInt32("tokenizer.ggml.eot_token_id", 263));
        assertThat(t.encode("<|im_start|>a<|im_end|>", false, true)).containsExactly(261, 259, 260, 262);
        int[] plain = t.encode("<|im_start|>a<|im_end|>", false);
        assertThat(plain).doesNotContain(261, 262).contains(3 + '<', 3 + '|');
        assertThat(t.isEndOfGeneration(2)).as("</s>, the EOS").isTrue();
        assertThat(t.isEndOfGeneration(262)).as("<|im_end|> by its text").isTrue();
        assertThat(t.isEndOfGeneration(263)).as("the declared EOT").isTrue();
        assertThat(t.isEndOfGeneration(261)).isFalse();
        assertThat(t.isEndOfGeneration(260)).isFalse();
        assertThat(t.tokenText(261)).isEqualTo("<|im_start|>");
    }

    @Test
    void higherScoreMergesFirstAndEqualScoresMergeLeftmostFirst() throws IOException {
        // ids 259.. : ▁ a b c ab bc ▁a abc
        List<Piece> base = List.of(Piece.normal(M, -1), Piece.normal("a", -2), Piece.normal("b", -3), Piece.normal("c", -4),
                Piece.normal("ab", -5), Piece.normal("bc", -5), Piece.normal(M + "a", -6), Piece.normal("abc", -7));
        SpmTokenizer tie = vocab(base, DEFAULTS);
        // ab and bc tie: ab (leftmost) merges, then ab+c = abc; ▁abc is no piece
        assertThat(tie.encode("abc", false)).containsExactly(259, 266);

        List<Piece> bcFirst = new ArrayList<>(base);
        bcFirst.set(5, Piece.normal("bc", -4.5f));
        SpmTokenizer scored = vocab(bcFirst, DEFAULTS);
        // bc first, then ▁a (-6) beats a+bc = abc (-7)
        assertThat(scored.encode("abc", false)).containsExactly(265, 264);
    }

    @Test
    void aPieceIsReachedOnlyThroughPiecesOnTheWay() throws IOException {
        SpmTokenizer t = vocab(List.of(Piece.normal(M, -1), Piece.normal("a", -2), Piece.normal("b", -3), Piece.normal("c", -4),
                Piece.normal("abc", -5)), DEFAULTS);
        assertThat(t.encode("abc", false)).containsExactly(259, 260, 261, 262);
    }

    @Test
    void charactersWithoutPieceFallBackToTheirUtf8Bytes() throws IOException {
        SpmTokenizer t = vocab(List.of(Piece.normal(M, -1), Piece.normal("a", -2)), DEFAULTS);
        assertThat(t.encode("é", false)).containsExactly(259, 3 + 0xC3, 3 + 0xA9);
        // one code point of two UTF-16 chars: four byte tokens, never split between surrogates
        assertThat(t.encode("a😀", false)).containsExactly(259, 260, 3 + 0xF0, 3 + 0x9F, 3 + 0x98, 3 + 0x80);
        assertThat(t.decode(t.encode("a😀é", false))).isEqualTo("a😀é");
    }

    @Test
    void spacesBecomeTheMarkAndOneLeadingSpaceIsAddedAndStripped() throws IOException {
        SpmTokenizer t = vocab(List.of(Piece.normal(M, -1), Piece.normal("a", -2), Piece.normal(M + "a", -3),
                Piece.normal(M + M, -4)), DEFAULTS);
        assertThat(t.encode("a a", false)).containsExactly(261, 261);
        assertThat(t.encode(" a", false)).containsExactly(259, 261);
        for (String s : new String[] {"a  a", "  a ", "a\n\ta", "", " ", "é😀 x", "<s></s>"}) {
            assertThat(t.decode(t.encode(s, false))).as("'%s'", s).isEqualTo(s);
        }
        SpmTokenizer noPrefix = vocab(List.of(Piece.normal(M, -1), Piece.normal("a", -2), Piece.normal(M + "a", -3)),
                w -> w.putBool("tokenizer.ggml.add_space_prefix", false));
        assertThat(noPrefix.encode("a a", false)).containsExactly(260, 261);
        assertThat(noPrefix.decode(new int[] {261})).isEqualTo(" a");
    }

    @Test
    void bosAndEosFollowTheMetadata() throws IOException {
        SpmTokenizer t = vocab(List.of(Piece.normal(M, -1), Piece.normal("a", -2)), DEFAULTS);
        assertThat(t.addBosByDefault()).isTrue();
        assertThat(t.encodePrompt("a")).containsExactly(1, 259, 260);
        assertThat(t.encodePrompt("")).containsExactly(1);
        assertThat(t.encode("", false)).isEmpty();
        assertThat(t.decode(new int[] {1, 259, 260})).isEqualTo(" a"); // no strip after BOS, as llama.cpp

        SpmTokenizer eos = vocab(List.of(Piece.normal(M, -1), Piece.normal("a", -2)),
                w -> w.putBool("tokenizer.ggml.add_bos_token", false).putBool("tokenizer.ggml.add_eos_token", true)
                        .putUInt32("tokenizer.ggml.eos_token_id", 0));
        assertThat(eos.encodePrompt("a")).containsExactly(259, 260, 0);
    }

    @Test
    void controlAndUnknownTokensAreNeitherParsedNorPrinted() throws IOException {
        SpmTokenizer t = vocab(List.of(Piece.normal(M, -1), Piece.normal("<", -2), Piece.normal("s", -3), Piece.normal(">", -4)), DEFAULTS);
        assertThat(t.encode("<s>", false)).containsExactly(259, 260, 261, 262);
        assertThat(t.decode(new int[] {0, 1, 260, 2})).isEqualTo("<");
        assertThat(new String(t.tokenPiece(1, true), StandardCharsets.UTF_8)).isEqualTo("<s>");
        assertThat(new String(t.tokenPiece(0, true), StandardCharsets.UTF_8)).isEqualTo("<unk>");
        assertThatThrownBy(() -> t.decode(new int[] {5000})).hasMessageContaining("token id 5000");
    }

    @Test
    void userDefinedTokensSplitTheTextAndRestartTheSpacePrefix() throws IOException {
        SpmTokenizer t = vocab(List.of(Piece.normal(M, -1), Piece.normal("x", -2), Piece.normal("y", -3),
                new Piece("<tool>", 0, SpmVocabulary.USER_DEFINED), new Piece("<to", 0, SpmVocabulary.USER_DEFINED)), DEFAULTS);
        assertThat(t.encode("x<tool>y<to", false)).containsExactly(259, 260, 262, 259, 261, 263);
        assertThat(t.decode(t.encode("x<tool>y", false))).isEqualTo("x<tool> y");
    }

    @Test
    void withoutByteTokensAnUnknownCharacterIsTheUnknownToken() throws IOException {
        List<Piece> all = List.of(new Piece("<unk>", 0, SpmVocabulary.UNKNOWN), new Piece("<s>", 0, SpmVocabulary.CONTROL),
                new Piece("</s>", 0, SpmVocabulary.CONTROL), Piece.normal(M, -1), Piece.normal("a", -2));
        Tokenizer t = Tokenizer.from(open(all, DEFAULTS));
        assertThat(t.encode("aéa", false)).containsExactly(3, 4, 0, 4);
    }

    @Test
    void detokenizerReassemblesByteTokens() throws IOException {
        SpmTokenizer t = vocab(List.of(Piece.normal(M, -1), Piece.normal("a", -2)), DEFAULTS);
        Detokenizer d = new Detokenizer(t);
        d.add(260);
        for (byte b : "😀".getBytes(StandardCharsets.UTF_8)) {
            assertThat(d.text()).isEqualTo("a");
            d.add(3 + (b & 0xFF));
        }
        assertThat(d.text()).isEqualTo("a😀");
        d.add(259);
        assertThat(d.finish()).isEqualTo("a😀 ");
    }

    @Test
    void inconsistentVocabulariesFailNamingTheProblem() throws IOException {
        List<Piece> dup = List.of(new Piece("<unk>", 0, 2), new Piece("<s>", 0, 3), new Piece("</s>", 0, 3), Piece.normal("a", -1), Piece.normal("a", -2));
        assertThatThrownBy(() -> Tokenizer.from(open(dup, DEFAULTS))).isInstanceOf(GgufFormatException.class)
                .hasMessageContaining("'a' appears twice");
        List<Piece> badByte = List.of(new Piece("<unk>", 0, 2), new Piece("<s>", 0, 3), new Piece("</s>", 0, 3), new Piece("<0xZZ>", 0, 6));
        assertThatThrownBy(() -> Tokenizer.from(open(badByte, DEFAULTS))).hasMessageContaining("byte token 3 is '<0xZZ>'");
        List<Piece> ok = List.of(new Piece("<unk>", 0, 2), new Piece("<s>", 0, 3), new Piece("</s>", 0, 3));
        assertThatThrownBy(() -> Tokenizer.from(open(ok, w -> w.putUInt32("tokenizer.ggml.bos_token_id", 7))))
                .hasMessageContaining("special token id 7 is outside the vocabulary of 3");
        assertThatThrownBy(() -> Tokenizer.from(open(ok, w -> w.putFloat32Array("tokenizer.ggml.scores", new float[2]))))
                .hasMessageContaining("3 tokens but 2 scores");
        assertThatThrownBy(() -> Tokenizer.from(open(ok, w -> w.putString("tokenizer.ggml.model", "bert"))))
                .hasMessageContaining("unsupported tokenizer.ggml.model 'bert' (supported: gpt2, llama)");
    }

    /**
     * The oracle's vocabulary in a tensor-less file, then random byte changes in its metadata: every
     * copy either loads and tokenizes, or fails with a {@link GgufFormatException}, never another
     * exception.
     */
    @Test
    void mutatedVocabularyLoadsOrFailsClearly() throws IOException {
        SpmVocabulary v = oracleTokenizer().vocabulary();
        Path clean = dir.resolve("spm-vocab.gguf");
        new GgufWriter().putString("tokenizer.ggml.model", "llama")
                .putStringArray("tokenizer.ggml.tokens", v.tokens())
                .putFloat32Array("tokenizer.ggml.scores", v.scores())
                .putInt32Array("tokenizer.ggml.token_type", v.types())
                .putUInt32("tokenizer.ggml.bos_token_id", 1).putUInt32("tokenizer.ggml.eos_token_id", 2)
                .putUInt32("tokenizer.ggml.unknown_token_id", 0).putBool("tokenizer.ggml.add_space_prefix", true)
                .write(clean);
        byte[] bytes = Files.readAllBytes(clean);
        assertThat(Tokenizer.from(GgufFile.open(clean)).encodePrompt("Hello 😀"))
                .isEqualTo(oracleTokenizer().encodePrompt("Hello 😀"));
        Random random = new Random(14);
        Path mutated = dir.resolve("mutated.gguf");
        int loaded = 0;
        int failed = 0;
        for (int i = 0; i < 300; i++) {
            byte[] copy = bytes.clone();
            for (int k = 1 + random.nextInt(4); k > 0; k--) {
                copy[24 + random.nextInt(copy.length - 24)] = (byte) random.nextInt(256);
            }
            Files.write(mutated, copy);
            try {
                Tokenizer t = Tokenizer.from(GgufFile.open(mutated));
                int[] ids = t.encodePrompt("Emoji 😀 東京 <s> x");
                t.decode(ids);
                loaded++;
            } catch (GgufFormatException e) {
                assertThat(e.getMessage()).contains("mutated.gguf");
                failed++;
            }
        }
        assertThat(loaded).isPositive();
        assertThat(failed).isPositive();
    }
}
