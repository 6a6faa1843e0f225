package io.moestream.runtime.tokenizer;

/** Text to token ids and back, as llama.cpp does for the model's vocabulary. */
public interface Tokenizer {

    /** Token ids of {@code text}; prepends BOS when {@code addBos} and the model has one. */
    int[] encode(String text, boolean addBos);

    /** Token ids as the model expects a prompt (BOS added when the model's metadata asks for it). */
    default int[] encodePrompt(String text) {
        return encode(text, addBosByDefault());
    }

    /** The raw bytes of one token (control tokens give an empty array). */
    byte[] tokenBytes(int id);

    /** UTF-8 text of the ids; invalid byte sequences become U+FFFD. */
    String decode(int[] ids);

    int vocabSize();

    int bosId();

    int eosId();

    boolean addBosByDefault();
}
