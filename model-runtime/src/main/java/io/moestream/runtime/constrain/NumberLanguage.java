package io.moestream.runtime.constrain;

import java.util.ArrayList;
import java.util.List;

/**
 * JSON numbers as byte languages, compact and canonical where it matters: integers without leading
 * zeros and never {@code -0}; numbers with a fraction whose last digit is not 0 (so {@code K.F} lies
 * strictly between {@code K} and {@code K+1}, which makes ranges exact); an exponent only when the
 * number has no bounds. Integer ranges are decomposed by digit count into digit-class sequences.
 */
final class NumberLanguage {

    /** Bounds beyond this magnitude are refused (digit decomposition stays small and exact). */
    static final long LIMIT = 1_000_000_000_000_000L / 1000;

    private static final Rx DIGIT = new Rx.Range('0', '9');
    private static final Rx NONZERO = new Rx.Range('1', '9');
    private static final Rx NATURAL = Rx.alt(Rx.literal("0"), Rx.seq(NONZERO, Rx.star(DIGIT)));
    private static final Rx FRACTION = Rx.seq(Rx.literal("."), Rx.star(DIGIT), NONZERO);

    private NumberLanguage() {}

    /** Any JSON number (sign, fraction, exponent). */
    static Rx anyNumber() {
        Rx exponent = Rx.seq(Rx.anyOf("eE"), Rx.optional(Rx.anyOf("+-")), Rx.seq(DIGIT, Rx.star(DIGIT)));
        return Rx.seq(Rx.optional(Rx.literal("-")), NATURAL, Rx.optional(FRACTION), Rx.optional(exponent));
    }

    /** Integers in {@code lo..hi}; {@code null} bounds are open. Empty ranges give null. */
    static Rx integers(Long lo, Long hi) {
        if (lo == null && hi == null) {
            return Rx.alt(Rx.literal("0"), Rx.seq(Rx.optional(Rx.literal("-")), NONZERO, Rx.star(DIGIT)));
        }
        List<Rx> options = new ArrayList<>();
        // non-negative part
        if (hi == null || hi >= 0) {
            long a = lo == null ? 0 : Math.max(0, lo);
            naturals(a, hi, options, "");
        }
        // negative part: -k for k in max(1, -hi) .. -lo
        if (lo == null || lo < 0) {
            long a = hi == null ? 1 : Math.max(1, -hi);
            Long b = lo == null ? null : -lo;
            List<Rx> neg = new ArrayList<>();
            naturals(a, b, neg, "-");
            options.addAll(neg);
        }
        return options.isEmpty() ? null : Rx.alt(options);
    }

    /**
     * Numbers {@code v} with {@code lo <= v <= hi} (integer bounds; {@code null} = open; exclusive
     * bounds already folded in by the caller for the integer part, see {@link JsonSchemaCompiler}).
     *
     * @param lo      lower bound, or null
     * @param loOpen  whether {@code v > lo} is required rather than {@code v >= lo}
     * @param hi      upper bound, or null
     * @param hiOpen  whether {@code v < hi} is required
     */
    static Rx numbers(Long lo, boolean loOpen, Long hi, boolean hiOpen) {
        if (lo == null && hi == null) {
            return anyNumber();
        }
        List<Rx> options = new ArrayList<>();
        Rx ints = integers(lo == null ? null : loOpen ? lo + 1 : lo, hi == null ? null : hiOpen ? hi - 1 : hi);
        if (ints != null) {
            options.add(ints);
        }
        // K.F, K >= 0, lies in (K, K+1): needs K >= lo and K + 1 <= hi
        if (hi == null || hi >= 1) {
            List<Rx> ks = new ArrayList<>();
            naturals(lo == null ? 0 : Math.max(0, lo), hi == null ? null : hi - 1, ks, "");
            if (!ks.isEmpty()) {
                options.add(Rx.seq(Rx.alt(ks), FRACTION));
            }
        }
        // -K.F, K >= 0, lies in (-K-1, -K): needs -K-1 >= lo and -K <= hi
        if (lo == null || lo <= -1) {
            List<Rx> ks = new ArrayList<>();
            naturals(hi == null ? 0 : Math.max(0, -hi), lo == null ? null : -lo - 1, ks, "");
            if (!ks.isEmpty()) {
                options.add(Rx.seq(Rx.literal("-"), Rx.alt(ks), FRACTION));
            }
        }
        return options.isEmpty() ? null : Rx.alt(options);
    }

    /** Adds the decimal numerals of {@code a..b} ({@code b} null = no upper bound), each after {@code prefix}. */
    private static void naturals(long a, Long b, List<Rx> out, String prefix) {
        if (b != null && a > b) {
            return;
        }
        int digits = Long.toString(a).length();
        for (int d = digits; d <= 18; d++) {
            long first = d == 1 ? 0 : pow10(d - 1);
            long last = pow10(d) - 1;
            if (b != null && first > b) {
                return;
            }
            long from = Math.max(a, first);
            long to = b == null ? last : Math.min(b, last);
            out.add(Rx.seq(Rx.literal(prefix), sameLength(Long.toString(from), Long.toString(to))));
        }
        if (b == null) {
            // 19 digits and more: all larger than any allowed bound
            out.add(Rx.seq(Rx.literal(prefix), NONZERO, new Rx.Repeat(DIGIT, 18, -1)));
        }
    }

    /** Numerals from {@code lo} to {@code hi}, both with the same number of digits. */
    private static Rx sameLength(String lo, String hi) {
        int n = lo.length();
        if (n == 0) {
            return Rx.EMPTY;
        }
        if (lo.equals("0".repeat(n)) && hi.equals("9".repeat(n))) {
            return new Rx.Repeat(DIGIT, n, n);
        }
        char l = lo.charAt(0);
        char h = hi.charAt(0);
        String restLo = lo.substring(1);
        String restHi = hi.substring(1);
        if (l == h) {
            return Rx.seq(new Rx.Range(l, l), sameLength(restLo, restHi));
        }
        List<Rx> options = new ArrayList<>();
        char from = l;
        char to = h;
        if (!restLo.equals("0".repeat(n - 1))) {
            options.add(Rx.seq(new Rx.Range(l, l), sameLength(restLo, "9".repeat(n - 1))));
            from++;
        }
        if (!restHi.equals("9".repeat(n - 1))) {
            options.add(Rx.seq(new Rx.Range(h, h), sameLength("0".repeat(n - 1), restHi)));
            to--;
        }
        if (from <= to) {
            options.add(Rx.seq(new Rx.Range(from, to), new Rx.Repeat(DIGIT, n - 1, n - 1)));
        }
        return Rx.alt(options);
    }

    private static long pow10(int n) {
        long p = 1;
        for (int i = 0; i < n; i++) {
            p *= 10;
        }
        return p;
    }
}
