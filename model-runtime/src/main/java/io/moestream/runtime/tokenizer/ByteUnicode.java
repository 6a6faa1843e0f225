package io.moestream.runtime.tokenizer;

/**
 * GPT-2's reversible byte-to-character map: printable Latin-1 bytes map to themselves, the other 68
 * bytes to U+0100.., so every byte string becomes a printable string (space = 'Ġ', newline = 'Ċ').
 * Byte-level BPE vocabularies store their tokens in this form.
 */
final class ByteUnicode {

    private static final char[] BYTE_TO_CHAR = new char[256];
    private static final int[] CHAR_TO_BYTE = new int[512];

    static {
        java.util.Arrays.fill(CHAR_TO_BYTE, -1);
        int next = 256;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            char c = printable ? (char) b : (char) next++;
            BYTE_TO_CHAR[b] = c;
            CHAR_TO_BYTE[c] = b;
        }
    }

    private ByteUnicode() {}

    static char encode(int b) {
        return BYTE_TO_CHAR[b & 0xFF];
    }

    /** The byte for a mapped character, or -1 when {@code c} is not one of the 256. */
    static int decode(int c) {
        return c >= 0 && c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
    }
}
