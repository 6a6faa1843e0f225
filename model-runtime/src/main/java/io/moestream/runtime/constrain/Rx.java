package io.moestream.runtime.constrain;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * A regular language over bytes, as a small expression tree: byte ranges, sequences, alternatives
 * and bounded or unbounded repetition. The JSON Schema and regex compilers build these; {@link Nfa}
 * expands them (a repetition emits its body once per copy).
 */
sealed interface Rx {

    /** The bytes {@code lo..hi} (0..255, inclusive). */
    record Range(int lo, int hi) implements Rx {}

    record Seq(List<Rx> parts) implements Rx {}

    record Alt(List<Rx> options) implements Rx {}

    /** {@code body} {@code min} to {@code max} times; {@code max < 0}: unbounded. */
    record Repeat(Rx body, int min, int max) implements Rx {}

    Rx EMPTY = new Seq(List.of());

    static Rx seq(Rx... parts) {
        return new Seq(List.of(parts));
    }

    static Rx alt(List<Rx> options) {
        return options.size() == 1 ? options.get(0) : new Alt(List.copyOf(options));
    }

    static Rx alt(Rx... options) {
        return alt(List.of(options));
    }

    static Rx star(Rx body) {
        return new Repeat(body, 0, -1);
    }

    static Rx optional(Rx body) {
        return new Repeat(body, 0, 1);
    }

    static Rx bytes(byte[] b) {
        List<Rx> parts = new ArrayList<>(b.length);
        for (byte x : b) {
            parts.add(new Range(x & 0xFF, x & 0xFF));
        }
        return new Seq(parts);
    }

    static Rx literal(String s) {
        return bytes(s.getBytes(StandardCharsets.UTF_8));
    }

    /** One byte of {@code chars} (ASCII, each listed). */
    static Rx anyOf(String chars) {
        List<Rx> options = new ArrayList<>();
        for (char c : chars.toCharArray()) {
            options.add(new Range(c, c));
        }
        return alt(options);
    }

    /**
     * The UTF-8 encodings of the code points {@code lo..hi} (surrogates D800..DFFF excluded, as
     * UTF-8 cannot encode them): each alternative a sequence of byte ranges.
     */
    static Rx utf8(int lo, int hi) {
        List<Rx> out = new ArrayList<>();
        int[][] bands = {{0, 0x7F}, {0x80, 0x7FF}, {0x800, 0xD7FF}, {0xE000, 0xFFFF}, {0x10000, 0x10FFFF}};
        for (int[] band : bands) {
            int a = Math.max(lo, band[0]);
            int b = Math.min(hi, band[1]);
            if (a <= b) {
                utf8Split(a, b, out);
            }
        }
        return alt(out);
    }

    /** Splits {@code lo..hi} (same encoded length) until each piece is a product of byte ranges. */
    private static void utf8Split(int lo, int hi, List<Rx> out) {
        int n = lo < 0x80 ? 1 : lo < 0x800 ? 2 : lo < 0x10000 ? 3 : 4;
        for (int i = 1; i < n; i++) {
            int m = (1 << (6 * i)) - 1;
            if ((lo & ~m) != (hi & ~m)) {
                if ((lo & m) != 0) {
                    utf8Split(lo, lo | m, out);
                    utf8Split((lo | m) + 1, hi, out);
                    return;
                }
                if ((hi & m) != m) {
                    utf8Split(lo, (hi & ~m) - 1, out);
                    utf8Split(hi & ~m, hi, out);
                    return;
                }
            }
        }
        byte[] a = new String(Character.toChars(lo)).getBytes(StandardCharsets.UTF_8);
        byte[] b = new String(Character.toChars(hi)).getBytes(StandardCharsets.UTF_8);
        List<Rx> parts = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            parts.add(new Range(a[i] & 0xFF, b[i] & 0xFF));
        }
        out.add(new Seq(parts));
    }
}
