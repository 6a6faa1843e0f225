package io.moestream.runtime.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * Turns a growing stream of token ids into text without splitting a UTF-8 character: a token may
 * end in the middle of a multi-byte character (byte-level BPE, SentencePiece byte tokens), so
 * {@link #text()} holds back an incomplete tail until the following token completes it. Not
 * thread-safe; one per sequence.
 */
public final class Detokenizer {

    private final Tokenizer tokenizer;
    private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();

    public Detokenizer(Tokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    public void add(int id) {
        if (tokenizer instanceof BpeTokenizer bpe) {
            bpe.appendBytes(id, bytes);
        } else {
            bytes.writeBytes(tokenizer.tokenBytes(id));
        }
    }

    /** Text of every complete UTF-8 character so far (invalid bytes become U+FFFD). */
    public String text() {
        byte[] b = bytes.toByteArray();
        return new String(b, 0, completeLength(b), StandardCharsets.UTF_8);
    }

    /** Text of all bytes, an incomplete tail included (as U+FFFD). */
    public String finish() {
        return bytes.toString(StandardCharsets.UTF_8);
    }

    /** Length of {@code b} without a trailing, possibly still incomplete, multi-byte character. */
    static int completeLength(byte[] b) {
        int n = b.length;
        for (int back = 1; back <= Math.min(3, n); back++) {
            int c = b[n - back] & 0xFF;
            if ((c & 0xC0) == 0x80) {
                continue; // continuation byte: keep looking for the lead byte
            }
            int need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
            return need > back ? n - back : n;
        }
        return n;
    }
}
