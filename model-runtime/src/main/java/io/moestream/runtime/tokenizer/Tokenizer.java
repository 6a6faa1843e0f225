package io.moestream.runtime.tokenizer;

import io.moestream.runtime.gguf.GgufFile;
import io.moestream.runtime.gguf.GgufFormatException;

/** Text to token ids and back, as llama.cpp does for the model's vocabulary. */
public interface Tokenizer {

    /**
     * The tokenizer named by {@code tokenizer.ggml.model}: {@code gpt2} (byte-level BPE,
     * {@link BpeTokenizer}) or {@code llama} (SentencePiece, {@link SpmTokenizer}).
     */
    static Tokenizer from(GgufFile f) throws GgufFormatException {
        String model = f.getString("tokenizer.ggml.model");
        return switch (model) {
            case "gpt2" -> BpeTokenizer.from(f);
            case "llama" -> SpmTokenizer.from(f);
            default -> throw new GgufFormatException(f.path().getFileName() + ": unsupported tokenizer.ggml.model '"
                    + model + "' (supported: gpt2, llama)");
        };
    }

    /** Token ids of {@code text} with special tokens in it tokenized as text; prepends BOS when {@code addBos} and the model has one. */
    default int[] encode(String text, boolean addBos) {
        return encode(text, addBos, false);
    }

    /**
     * Token ids of {@code text}; with {@code parseSpecial} the control tokens written in it (e.g.
     * {@code <|im_start|>} in a rendered chat template) become their ids instead of being tokenized
     * as text (llama.cpp's {@code parse_special}). Prepends BOS when {@code addBos} and the model has one.
     */
    int[] encode(String text, boolean addBos, boolean parseSpecial);

    /** Token ids as the model expects a prompt (BOS added when the model's metadata asks for it). */
    default int[] encodePrompt(String text) {
        return encode(text, addBosByDefault());
    }

    /** The raw bytes of one token (control tokens give an empty array). */
    byte[] tokenBytes(int id);

    /**
     * UTF-8 text of the ids, control tokens giving nothing (SentencePiece also drops one leading
     * space, as llama.cpp's {@code llama_detokenize}: {@link SpmTokenizer#decode}); invalid byte
     * sequences become U+FFFD.
     */
    String decode(int[] ids);

    int vocabSize();

    int bosId();

    int eosId();

    /**
     * Whether sampling {@code id} ends generation: EOS, EOT and EOM as the GGUF declares them, and the
     * end-of-turn tokens llama.cpp recognizes by their text ({@code <|im_end|>}, {@code <|eot_id|>},
     * {@code <|return|>}, {@code <|endoftext|>}, ...).
     */
    boolean isEndOfGeneration(int id);

    /** The vocabulary's text of a token (for a special token: how it is written, e.g. {@code <|im_end|>}). */
    String tokenText(int id);

    boolean addBosByDefault();
}
