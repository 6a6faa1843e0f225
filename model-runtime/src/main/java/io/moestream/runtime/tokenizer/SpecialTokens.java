package io.moestream.runtime.tokenizer;

import io.moestream.runtime.gguf.GgufFile;
import io.moestream.runtime.gguf.GgufFormatException;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.Comparator;
import java.util.List;
import java.util.Set;
import java.util.stream.IntStream;

/**
 * The special tokens of a vocabulary as llama.cpp's vocab keeps them: which ones end generation, and
 * how text is cut at special tokens before the normal tokenization runs on the pieces between them.
 *
 * <p>End of generation: EOS, EOT ({@code tokenizer.ggml.eot_token_id}), EOM
 * ({@code tokenizer.ggml.eom_token_id}), and every token whose text is one of the end-of-turn
 * markers llama.cpp recognizes by name ({@link #END_OF_GENERATION_NAMES}); when the vocabulary has
 * {@code <|return|>} and {@code <|call|>} (gpt-oss's harmony format), {@code <|end|>} only ends a
 * message, not the generation, and is left out. Immutable.
 */
final class SpecialTokens {

    /** Token texts llama.cpp treats as end of generation whatever their id. */
    static final Set<String> END_OF_GENERATION_NAMES = Set.of("<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>",
            "<|call|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>",
            "<end_of_utterance>", "<\uFF5Cend\u2581of\u2581sentence\uFF5C>");

    /** A piece of the input: raw text (never empty), or a special token found in it ({@code text} null). */
    record Fragment(String text, int token) {}

    private final BitSet endOfGeneration;

    private SpecialTokens(BitSet endOfGeneration) {
        this.endOfGeneration = endOfGeneration;
    }

    /** The end-of-generation set of {@code tokens}, given the declared EOS and any other declared ids (-1: none). */
    static SpecialTokens of(List<String> tokens, int eos, int... declared) {
        BitSet eog = new BitSet(tokens.size());
        for (int i = 0; i < tokens.size(); i++) {
            if (END_OF_GENERATION_NAMES.contains(tokens.get(i))) {
                eog.set(i);
            }
        }
        if (tokens.contains("<|return|>") && tokens.contains("<|call|>")) {
            int end = tokens.indexOf("<|end|>");
            if (end >= 0) {
                eog.clear(end);
            }
        }
        if (eos >= 0) {
            eog.set(eos);
        }
        for (int id : declared) {
            if (id >= 0) {
                eog.set(id);
            }
        }
        return new SpecialTokens(eog);
    }

    /** EOT and EOM ids a GGUF declares (-1 where absent), checked against the vocabulary size. */
    static int[] declared(GgufFile f, int vocabSize) throws GgufFormatException {
        String[] keys = {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"};
        int[] ids = new int[keys.length];
        for (int i = 0; i < keys.length; i++) {
            ids[i] = f.getInt(keys[i], -1);
            if (ids[i] >= vocabSize) {
                throw new GgufFormatException(f.path().getFileName() + ": " + keys[i] + " " + ids[i]
                        + " is outside the vocabulary of " + vocabSize);
            }
        }
        return ids;
    }

    boolean isEndOfGeneration(int id) {
        return id >= 0 && endOfGeneration.get(id);
    }

    /** The ids of {@code types} matching {@code wanted}, longest text first (ties: lower id first), for {@link #partition}. */
    static int[] byLength(List<String> tokens, int[] types, Set<Integer> wanted) {
        if (types == null) {
            return new int[0];
        }
        return IntStream.range(0, tokens.size()).filter(i -> wanted.contains(types[i]) && !tokens.get(i).isEmpty())
                .boxed()
                .sorted(Comparator.comparingInt((Integer i) -> -tokens.get(i).getBytes(StandardCharsets.UTF_8).length)
                        .thenComparingInt(i -> i))
                .mapToInt(Integer::intValue).toArray();
    }

    /**
     * {@code text} cut at every occurrence of the tokens {@code specials} (in that order of priority, as
     * llama.cpp's special-token partition does).
     */
    static List<Fragment> partition(String text, int[] specials, List<String> tokens) {
        List<Fragment> fragments = new ArrayList<>();
        if (!text.isEmpty()) {
            fragments.add(new Fragment(text, -1));
        }
        for (int id : specials) {
            String needle = tokens.get(id);
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
}
