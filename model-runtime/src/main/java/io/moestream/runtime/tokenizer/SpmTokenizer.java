package io.moestream.runtime.tokenizer;

import io.moestream.runtime.gguf.GgufFile;
import io.moestream.runtime.gguf.GgufFormatException;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * SentencePiece tokenization as llama.cpp runs it for {@code tokenizer.ggml.model = "llama"}
 * (Llama 1/2, Mistral, Mixtral): the text is cut at user-defined tokens; each remaining fragment gets
 * a leading space when it starts the input or follows such a token ({@code add_space_prefix}), every
 * space becomes {@code ▁}, and {@link SpmMerger} merges its characters by piece score. Special tokens
 * in the text are not parsed (llama.cpp's {@code parse_special=false}). Immutable and thread-safe.
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

    public SpmTokenizer(SpmVocabulary vocab) {
        this.vocab = vocab;
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
        this.userDefined = IntStream.range(0, n).filter(i -> vocab.type(i) == SpmVocabulary.USER_DEFINED).boxed()
                .sorted(Comparator.comparingInt((Integer i) -> -vocab.tokens().get(i).getBytes(StandardCharsets.UTF_8).length)
                        .thenComparingInt(i -> i))
                .mapToInt(Integer::intValue).toArray();
    }

    /** Reads the vocabulary from GGUF metadata; fails naming the inconsistent key. */
    public static SpmTokenizer from(GgufFile f) throws GgufFormatException {
        return new SpmTokenizer(SpmVocabulary.from(f));
    }

    public SpmVocabulary vocabulary() {
        return vocab;
    }

    @Override
    public int[] encode(String text, boolean addBosToken) {
        List<Integer> out = new ArrayList<>();
        if (addBosToken && vocab.bosId() >= 0) {
            out.add(vocab.bosId());
        }
        // lone surrogates become '?' exactly as the UTF-8 bytes llama.cpp would be given
        String utf8 = new String(text.getBytes(StandardCharsets.UTF_8), StandardCharsets.UTF_8);
        boolean afterSpecial = true;
        for (Fragment fragment : partition(utf8)) {
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

    /** A piece of the input: raw text (never empty), or a user-defined token found in it ({@code text} null). */
    private record Fragment(String text, int token) {}

    /**
     * The text cut at every user-defined token, longest first (ties: lower id first), as llama.cpp's
     * special-token partition does with {@code parse_special=false}.
     */
    private List<Fragment> partition(String text) {
        List<Fragment> fragments = new ArrayList<>();
        if (!text.isEmpty()) {
            fragments.add(new Fragment(text, -1));
        }
        for (int id : userDefined) {
            String needle = vocab.tokens().get(id);
            List<Fragment> next = new ArrayList<>(fragments.size());
            for (Fragment f : fragments) {
                String s = f.text();
                if (s == null) {
                    next.add(f);
                    continue;
                }
                int from = 0;
                for (int at = s.indexOf(needle); at >= 0; at = s.indexOf(needle, from)) {
                    if (at > from) {
                        next.add(new Fragment(s.substring(from, at), -1));
                    }
                    next.add(new Fragment(null, id));
                    from = at + needle.length();
                }
                if (from < s.length()) {
                    next.add(new Fragment(s.substring(from), -1));
                }
            }
            fragments = next;
        }
        return fragments;
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
