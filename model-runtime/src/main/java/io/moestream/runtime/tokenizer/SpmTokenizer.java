package io.moestream.runtime.tokenizer;

import io.moestream.runtime.gguf.GgufFile;
import io.moestream.runtime.gguf.GgufFormatException;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * SentencePiece tokenization as llama.cpp runs it for {@code tokenizer.ggml.model = "llama"}
 * (Llama 1/2, Mistral, Mixtral): the text is cut at user-defined tokens; each remaining fragment gets
 * a leading space when it starts the input or follows such a token ({@code add_space_prefix}), every
 * space becomes {@code ▁}, and {@link SpmMerger} merges its characters by piece score. With
 * {@code parseSpecial} (text rendered from a chat template) control tokens in the text are cut out
 * the same way and become their ids (llama.cpp's {@code parse_special=true}). Immutable and thread-safe.
 *
 * <p>Decoding writes normal pieces with {@code ▁} as a space, byte tokens as their byte, user-defined
 * tokens verbatim, and nothing for control, unknown and unused tokens (their text with
 * {@link #tokenPiece(int, boolean) special = true}).
 */
public final class SpmTokenizer implements Tokenizer {

    static final char SPACE_MARK = '\u2581';

    private final SpmVocabulary vocab;
    private final Map<String, Integer> ids;
    private final int[] byteTokens = new int[256];
    private final byte[][] pieces;
    private final byte[][] specialPieces;
    private final int[] userDefined;
    private final int[] special;
    private final SpecialTokens specialTokens;

    public SpmTokenizer(SpmVocabulary vocab) {
        this(vocab, new int[0]);
    }

    /** @param declaredEog end-of-generation ids the model declares besides EOS (EOT, EOM; -1 for none) */
    public SpmTokenizer(SpmVocabulary vocab, int... declaredEog) {
        this.vocab = vocab;
        this.specialTokens = SpecialTokens.of(vocab.tokens(), vocab.eosId(), declaredEog);
        int n = vocab.size();
        this.ids = new HashMap<>(n * 2);
        this.pieces = new byte[n][];
        this.specialPieces = new byte[n][];
        for (int i = 0; i < n; i++) {
            String text = vocab.tokens().get(i);
            ids.put(text, i);
            int type = vocab.type(i);
            byte[] raw = text.getBytes(StandardCharsets.UTF_8);
            specialPieces[i] = switch (type) {
                case SpmVocabulary.NORMAL -> text.replace(SPACE_MARK, ' ').getBytes(StandardCharsets.UTF_8);
                case SpmVocabulary.BYTE -> new byte[] {(byte) Integer.parseInt(text.substring(3, 5), 16)};
                case SpmVocabulary.UNKNOWN, SpmVocabulary.CONTROL, SpmVocabulary.USER_DEFINED -> raw;
                default -> new byte[0];
            };
            boolean hidden = type == SpmVocabulary.UNKNOWN || type == SpmVocabulary.CONTROL;
            pieces[i] = hidden ? new byte[0] : specialPieces[i];
        }
        for (int b = 0; b < 256; b++) {
            Integer id = ids.get(String.format("<0x%02X>", b));
            if (id == null && b < 0x80) {
                id = ids.get(String.valueOf((char) b));
            }
            byteTokens[b] = id == null ? -1 : id;
        }
        this.userDefined = SpecialTokens.byLength(vocab.tokens(), vocab.types(), Set.of(SpmVocabulary.USER_DEFINED));
        this.special = SpecialTokens.byLength(vocab.tokens(), vocab.types(),
                Set.of(SpmVocabulary.USER_DEFINED, SpmVocabulary.CONTROL, SpmVocabulary.UNKNOWN));
    }

    /** Reads the vocabulary from GGUF metadata; fails naming the inconsistent key. */
    public static SpmTokenizer from(GgufFile f) throws GgufFormatException {
        SpmVocabulary vocab = SpmVocabulary.from(f);
        return new SpmTokenizer(vocab, SpecialTokens.declared(f, vocab.size()));
    }

    public SpmVocabulary vocabulary() {
        return vocab;
    }

    @Override
    public int[] encode(String text, boolean addBosToken, boolean parseSpecial) {
        List<Integer> out = new ArrayList<>();
        if (addBosToken && vocab.bosId() >= 0) {
            out.add(vocab.bosId());
        }
        // lone surrogates become '?' exactly as the UTF-8 bytes llama.cpp would be given
        String utf8 = new String(text.getBytes(StandardCharsets.UTF_8), StandardCharsets.UTF_8);
        boolean afterSpecial = true;
        for (SpecialTokens.Fragment fragment : SpecialTokens.partition(utf8, parseSpecial ? special : userDefined,
                vocab.tokens())) {
            if (fragment.text() == null) {
                out.add(fragment.token());
                afterSpecial = true;
            } else {
                String s = vocab.addSpacePrefix() && afterSpecial ? " " + fragment.text() : fragment.text();
                new SpmMerger(this, s.replace(' ', SPACE_MARK)).tokenize(out);
                afterSpecial = false;
            }
        }
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    /** As {@link Tokenizer#encodePrompt}, plus EOS when {@code tokenizer.ggml.add_eos_token} asks for it. */
    @Override
    public int[] encodePrompt(String text) {
        int[] ids = encode(text, vocab.addBos());
        if (!vocab.addEos() || vocab.eosId() < 0) {
            return ids;
        }
        int[] withEos = Arrays.copyOf(ids, ids.length + 1);
        withEos[ids.length] = vocab.eosId();
        return withEos;
    }

    /** The token of a piece text, or null. */
    Integer tokenOf(String piece) {
        return ids.get(piece);
    }

    float score(int id) {
        return vocab.score(id);
    }

    /** The byte-fallback token of a byte ({@code <0xXX>}, else the one-character piece), or -1. */
    int byteToken(int b) {
        return byteTokens[b & 0xFF];
    }

    int unknownId() {
        return vocab.unknownId();
    }

    /**
     * The bytes llama.cpp's {@code token_to_piece} gives for a token: with {@code special}, control
     * and unknown tokens give their text (as in the oracle's {@code greedy_text}), without it nothing.
     */
    public byte[] tokenPiece(int id, boolean special) {
        checkId(id);
        return (special ? specialPieces[id] : pieces[id]).clone();
    }

    @Override
    public byte[] tokenBytes(int id) {
        return tokenPiece(id, false);
    }

    /**
     * llama.cpp's {@code llama_detokenize} without special tokens: as {@link #tokenBytes} per id,
     * except that with {@code add_space_prefix} one leading space of the first token is dropped (so
     * {@code decode(encode(text, false))} is {@code text}; after a BOS the space stays, as there).
     */
    @Override
    public String decode(int[] tokenIds) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        boolean strip = vocab.addSpacePrefix();
        for (int id : tokenIds) {
            checkId(id);
            byte[] p = pieces[id];
            int skip = strip && p.length > 0 && p[0] == ' ' ? 1 : 0;
            out.write(p, skip, p.length - skip);
            strip = false;
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    private void checkId(int id) {
        if (id < 0 || id >= pieces.length) {
            throw new IllegalArgumentException("token id " + id + " is outside the vocabulary of " + pieces.length);
        }
    }

    @Override
    public boolean isEndOfGeneration(int id) {
        return specialTokens.isEndOfGeneration(id);
    }

    @Override
    public String tokenText(int id) {
        checkId(id);
        return vocab.tokens().get(id);
    }

    @Override
    public int vocabSize() {
        return vocab.size();
    }

    @Override
    public int bosId() {
        return vocab.bosId();
    }

    @Override
    public int eosId() {
        return vocab.eosId();
    }

    @Override
    public boolean addBosByDefault() {
        return vocab.addBos();
    }
}
