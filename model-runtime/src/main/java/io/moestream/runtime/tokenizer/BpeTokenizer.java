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
 * Byte-level BPE as llama.cpp runs it for {@code tokenizer.ggml.model = "gpt2"}: split the text with
 * the pre-tokenizer regex, write each piece's UTF-8 bytes as GPT-2 characters, then repeatedly merge
 * the adjacent pair with the lowest merge rank (leftmost first on ties) and look the symbols up in
 * the vocabulary. Special tokens in plain text are not parsed (llama.cpp's parse_special=false); with
 * {@code parseSpecial} (text rendered from a chat template) the text is first cut at control and
 * user-defined tokens, which become their ids, and each piece between them is tokenized as above.
 * Immutable and thread-safe.
 */
public final class BpeTokenizer implements Tokenizer {

    /** llama.cpp's token_type value for control tokens (BOS, EOS, ...). */
    private static final int TYPE_CONTROL = 3;
    /** llama.cpp's token_type value for user-defined tokens. */
    private static final int TYPE_USER_DEFINED = 4;

    private final List<String> tokens;
    private final int[] tokenTypes;
    private final List<String> merges;
    private final byte[][] tokenBytes;
    private final Map<String, Integer> ids;
    private final Map<String, Integer> mergeRanks;
    private final PreTokenizer pre;
    private final int bosId;
    private final int eosId;
    private final boolean addBos;
    private final int[] declaredEog;
    private final SpecialTokens specialTokens;
    private final int[] special;

    /**
     * @param tokens     vocabulary in GPT-2 character form
     * @param tokenTypes llama.cpp token types (null = all normal)
     * @param merges     {@code "left right"} merges, in rank order
     */
    public BpeTokenizer(List<String> tokens, int[] tokenTypes, List<String> merges, PreTokenizer pre,
            int bosId, int eosId, boolean addBos) {
        this(tokens, tokenTypes, merges, pre, new int[] {bosId, eosId}, addBos, new int[0]);
    }

    /** As above; {@code bosEos} is {BOS, EOS}, {@code declaredEog} the EOT and EOM ids (-1: none). */
    private BpeTokenizer(List<String> tokens, int[] tokenTypes, List<String> merges, PreTokenizer pre, int[] bosEos,
            boolean addBos, int[] declaredEog) {
        int bosId = bosEos[0];
        int eosId = bosEos[1];
        this.declaredEog = declaredEog.clone();
        this.specialTokens = SpecialTokens.of(tokens, eosId, declaredEog);
        this.special = SpecialTokens.byLength(tokens, tokenTypes, Set.of(TYPE_CONTROL, TYPE_USER_DEFINED));
        this.tokens = List.copyOf(tokens);
        this.tokenTypes = tokenTypes == null ? null : tokenTypes.clone();
        this.merges = List.copyOf(merges);
        this.pre = pre;
        this.bosId = bosId;
        this.eosId = eosId;
        this.addBos = addBos;
        this.ids = new HashMap<>(tokens.size() * 2);
        this.tokenBytes = new byte[tokens.size()][];
        for (int i = 0; i < tokens.size(); i++) {
            ids.putIfAbsent(tokens.get(i), i);
            boolean control = tokenTypes != null && tokenTypes[i] == TYPE_CONTROL;
            tokenBytes[i] = control ? new byte[0] : toBytes(tokens.get(i));
        }
        this.mergeRanks = new HashMap<>(merges.size() * 2);
        for (int i = 0; i < merges.size(); i++) {
            mergeRanks.putIfAbsent(merges.get(i), i);
        }
    }

    /** Reads the tokenizer from GGUF metadata; fails naming an unsupported model or pre-tokenizer. */
    public static BpeTokenizer from(GgufFile f) throws GgufFormatException {
        String file = f.path().getFileName().toString();
        String model = f.getString("tokenizer.ggml.model");
        if (!model.equals("gpt2")) {
            throw new GgufFormatException(file + ": unsupported tokenizer.ggml.model '" + model + "' (supported: gpt2)");
        }
        PreTokenizer pre;
        try {
            pre = PreTokenizer.forName(f.getString("tokenizer.ggml.pre"));
        } catch (IllegalArgumentException e) {
            throw new GgufFormatException(file + ": " + e.getMessage());
        }
        List<String> tokens = f.getStringArray("tokenizer.ggml.tokens");
        int[] types = null;
        if (f.has("tokenizer.ggml.token_type")) {
            types = Arrays.stream(f.getIntegerArray("tokenizer.ggml.token_type")).mapToInt(v -> (int) v).toArray();
            if (types.length != tokens.size()) {
                throw new GgufFormatException(file + ": tokenizer.ggml.token_type has " + types.length
                        + " entries but tokenizer.ggml.tokens has " + tokens.size());
            }
        }
        List<String> merges = f.has("tokenizer.ggml.merges") ? f.getStringArray("tokenizer.ggml.merges") : List.of();
        int bos = f.getInt("tokenizer.ggml.bos_token_id", -1);
        int eos = f.getInt("tokenizer.ggml.eos_token_id", -1);
        for (int id : new int[] {bos, eos}) {
            if (id >= tokens.size()) {
                throw new GgufFormatException(file + ": special token id " + id + " is outside the vocabulary of " + tokens.size());
            }
        }
        return new BpeTokenizer(tokens, types, merges, pre, new int[] {bos, eos},
                f.getBoolean("tokenizer.ggml.add_bos_token", true), SpecialTokens.declared(f, tokens.size()));
    }

    /** The same vocabulary with another pre-tokenizer and BOS default (e.g. qwen2 for tests). */
    public BpeTokenizer withPreTokenizer(PreTokenizer newPre, boolean newAddBos) {
        return new BpeTokenizer(tokens, tokenTypes, merges, newPre, new int[] {bosId, eosId}, newAddBos, declaredEog);
    }

    public PreTokenizer preTokenizer() {
        return pre;
    }

    /** The vocabulary string of a token (GPT-2 character form). */
    @Override
    public String tokenText(int id) {
        return tokens.get(id);
    }

    @Override
    public int[] encode(String text, boolean addBosToken, boolean parseSpecial) {
        List<Integer> out = new ArrayList<>();
        if (addBosToken && bosId >= 0) {
            out.add(bosId);
        }
        if (!parseSpecial) {
            encodeText(text, out);
        } else {
            for (SpecialTokens.Fragment f : SpecialTokens.partition(text, special, tokens)) {
                if (f.text() == null) {
                    out.add(f.token());
                } else {
                    encodeText(f.text(), out);
                }
            }
        }
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    private void encodeText(String text, List<Integer> out) {
        for (String piece : pre.split(text)) {
            encodePiece(piece, out);
        }
    }

    private void encodePiece(String piece, List<Integer> out) {
        byte[] utf8 = piece.getBytes(StandardCharsets.UTF_8);
        List<String> symbols = new ArrayList<>(utf8.length);
        for (byte b : utf8) {
            symbols.add(String.valueOf(ByteUnicode.encode(b)));
        }
        while (symbols.size() > 1) {
            int best = -1;
            int bestRank = Integer.MAX_VALUE;
            for (int i = 0; i + 1 < symbols.size(); i++) {
                Integer rank = mergeRanks.get(symbols.get(i) + " " + symbols.get(i + 1));
                if (rank != null && rank < bestRank) {
                    bestRank = rank;
                    best = i;
                }
            }
            if (best < 0) {
                break;
            }
            symbols.set(best, symbols.get(best) + symbols.remove(best + 1));
        }
        for (String s : symbols) {
            Integer id = ids.get(s);
            if (id != null) {
                out.add(id);
                continue;
            }
            for (int i = 0; i < s.length(); i++) { // a merge whose result is not a token: fall back to bytes
                Integer byteId = ids.get(String.valueOf(s.charAt(i)));
                if (byteId != null) {
                    out.add(byteId);
                }
            }
        }
    }

    @Override
    public byte[] tokenBytes(int id) {
        return tokenBytes[id].clone();
    }

    /** Appends the bytes of {@code id} without copying them. */
    void appendBytes(int id, ByteArrayOutputStream out) {
        byte[] b = tokenBytes[id];
        out.write(b, 0, b.length);
    }

    @Override
    public String decode(int[] ids) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (int id : ids) {
            appendBytes(id, out);
        }
        return new String(out.toByteArray(), StandardCharsets.UTF_8);
    }

    @Override
    public boolean isEndOfGeneration(int id) {
        return specialTokens.isEndOfGeneration(id);
    }

    @Override
    public int vocabSize() {
        return tokens.size();
    }

    @Override
    public int bosId() {
        return bosId;
    }

    @Override
    public int eosId() {
        return eosId;
    }

    @Override
    public boolean addBosByDefault() {
        return addBos;
    }

    /** Bytes of a vocabulary string: GPT-2 characters map back to bytes, anything else is UTF-8. */
    private static byte[] toBytes(String token) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(token.length());
        boolean allMapped = token.codePoints().allMatch(c -> ByteUnicode.decode(c) >= 0);
        if (!allMapped) {
            return token.getBytes(StandardCharsets.UTF_8);
        }
        token.codePoints().forEach(c -> out.write(ByteUnicode.decode(c)));
        return out.toByteArray();
    }
}
