package io.moestream.runtime.tokenizer;

import io.moestream.runtime.gguf.GgufFile;
import io.moestream.runtime.gguf.GgufFormatException;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * A SentencePiece vocabulary as GGUF stores it ({@code tokenizer.ggml.model = "llama"}), with
 * llama.cpp's defaults for absent keys: BOS 1, EOS 2, unknown 0, {@code add_bos_token} true,
 * {@code add_eos_token} false, {@code add_space_prefix} true, every score 0, every type normal. An
 * empty token string is renamed {@code [EMPTY_<id>]}, as llama.cpp does.
 *
 * @param tokens         the pieces ({@code ▁} U+2581 stands for a space; byte tokens are {@code <0xXX>})
 * @param scores         one per token; a merge whose result has the higher score happens first
 * @param types          llama.cpp token types, one per token ({@link #NORMAL}, {@link #BYTE}, ...)
 * @param bosId          BOS id, or -1
 * @param eosId          EOS id, or -1
 * @param unknownId      the unknown token, or -1
 * @param addBos         prepend BOS to a prompt
 * @param addEos         append EOS to a prompt
 * @param addSpacePrefix prepend a space to text that starts the input or follows a user-defined token
 */
public record SpmVocabulary(List<String> tokens, float[] scores, int[] types, int bosId, int eosId, int unknownId,
        boolean addBos, boolean addEos, boolean addSpacePrefix) {

    /** llama.cpp's {@code llama_token_type} values ({@code tokenizer.ggml.token_type}). */
    public static final int UNDEFINED = 0;
    public static final int NORMAL = 1;
    public static final int UNKNOWN = 2;
    public static final int CONTROL = 3;
    public static final int USER_DEFINED = 4;
    public static final int UNUSED = 5;
    public static final int BYTE = 6;

    private static final Pattern BYTE_TOKEN = Pattern.compile("<0x[0-9A-Fa-f]{2}>");

    /** @throws IllegalArgumentException naming the first inconsistency (lengths, ids, duplicate or malformed tokens) */
    public SpmVocabulary {
        int n = tokens.size();
        if (scores.length != n || types.length != n) {
            throw new IllegalArgumentException(n + " tokens but " + scores.length + " scores and " + types.length + " token types");
        }
        List<String> named = new ArrayList<>(n);
        Set<String> seen = new HashSet<>(n * 2);
        for (int i = 0; i < n; i++) {
            String t = tokens.get(i).isEmpty() ? "[EMPTY_" + i + "]" : tokens.get(i);
            if (!seen.add(t)) {
                throw new IllegalArgumentException("token " + i + " '" + t + "' appears twice in the vocabulary");
            }
            if (types[i] == BYTE && !BYTE_TOKEN.matcher(t).matches()) {
                throw new IllegalArgumentException("byte token " + i + " is '" + t + "', not <0xXX>");
            }
            named.add(t);
        }
        for (int id : new int[] {bosId, eosId, unknownId}) {
            if (id < -1 || id >= n) {
                throw new IllegalArgumentException("special token id " + id + " is outside the vocabulary of " + n);
            }
        }
        tokens = List.copyOf(named);
        scores = scores.clone();
        types = types.clone();
    }

    /** Reads {@code tokenizer.ggml.*}; fails naming the file and the inconsistent key. */
    public static SpmVocabulary from(GgufFile f) throws GgufFormatException {
        String file = f.path().getFileName().toString();
        List<String> tokens = f.getStringArray("tokenizer.ggml.tokens");
        int n = tokens.size();
        float[] scores = new float[n];
        if (f.has("tokenizer.ggml.scores")) {
            double[] s = f.getFloatArray("tokenizer.ggml.scores");
            scores = new float[s.length];
            for (int i = 0; i < s.length; i++) {
                scores[i] = (float) s[i];
            }
        }
        int[] types = new int[n];
        Arrays.fill(types, NORMAL);
        if (f.has("tokenizer.ggml.token_type")) {
            types = Arrays.stream(f.getIntegerArray("tokenizer.ggml.token_type")).mapToInt(v -> (int) v).toArray();
        }
        try {
            return new SpmVocabulary(tokens, scores, types,
                    specialId(f, "tokenizer.ggml.bos_token_id", 1, n),
                    specialId(f, "tokenizer.ggml.eos_token_id", 2, n),
                    specialId(f, "tokenizer.ggml.unknown_token_id", 0, n),
                    f.getBoolean("tokenizer.ggml.add_bos_token", true),
                    f.getBoolean("tokenizer.ggml.add_eos_token", false),
                    f.getBoolean("tokenizer.ggml.add_space_prefix", true));
        } catch (IllegalArgumentException e) {
            throw new GgufFormatException(file + ": SentencePiece vocabulary: " + e.getMessage());
        }
    }

    /** The key's value, else llama.cpp's default when the vocabulary is large enough to hold it. */
    private static int specialId(GgufFile f, String key, int fallback, int n) throws GgufFormatException {
        if (f.has(key)) {
            return f.getInt(key);
        }
        return fallback < n ? fallback : -1;
    }

    public int size() {
        return tokens.size();
    }

    @Override
    public float[] scores() {
        return scores.clone();
    }

    @Override
    public int[] types() {
        return types.clone();
    }

    float score(int id) {
        return scores[id];
    }

    int type(int id) {
        return types[id];
    }
}
