package io.moestream.runtime.constrain;

import java.util.ArrayList;
import java.util.List;

/** A set of Unicode code points as sorted, disjoint, non-adjacent ranges (immutable). */
record CodePoints(int[] ranges) {

    static final int MAX = 0x10FFFF;
    static final CodePoints DIGIT = of('0', '9');
    static final CodePoints WORD = of('0', '9').union(of('A', 'Z')).union(of('a', 'z')).union(of('_', '_'));
    static final CodePoints SPACE = of(' ', ' ').union(of('\t', '\r')); // \t \n \v \f \r
    /** What {@code .} matches: everything but line terminators (ECMA-262). */
    static final CodePoints DOT = of('\n', '\n').union(of('\r', '\r')).union(of(0x2028, 0x2029)).negate();

    static CodePoints of(int lo, int hi) {
        return new CodePoints(new int[] {lo, hi});
    }

    static CodePoints none() {
        return new CodePoints(new int[0]);
    }

    boolean isEmpty() {
        return ranges.length == 0;
    }

    CodePoints union(CodePoints o) {
        List<int[]> all = new ArrayList<>();
        for (int i = 0; i < ranges.length; i += 2) {
            all.add(new int[] {ranges[i], ranges[i + 1]});
        }
        for (int i = 0; i < o.ranges.length; i += 2) {
            all.add(new int[] {o.ranges[i], o.ranges[i + 1]});
        }
        all.sort((a, b) -> Integer.compare(a[0], b[0]));
        List<int[]> merged = new ArrayList<>();
        for (int[] r : all) {
            int[] last = merged.isEmpty() ? null : merged.get(merged.size() - 1);
            if (last != null && r[0] <= last[1] + 1) {
                last[1] = Math.max(last[1], r[1]);
            } else {
                merged.add(r.clone());
            }
        }
        int[] out = new int[merged.size() * 2];
        for (int i = 0; i < merged.size(); i++) {
            out[2 * i] = merged.get(i)[0];
            out[2 * i + 1] = merged.get(i)[1];
        }
        return new CodePoints(out);
    }

    CodePoints negate() {
        List<Integer> out = new ArrayList<>();
        int next = 0;
        for (int i = 0; i < ranges.length; i += 2) {
            if (ranges[i] > next) {
                out.add(next);
                out.add(ranges[i] - 1);
            }
            next = ranges[i + 1] + 1;
        }
        if (next <= MAX) {
            out.add(next);
            out.add(MAX);
        }
        return new CodePoints(out.stream().mapToInt(Integer::intValue).toArray());
    }

    CodePoints minus(CodePoints o) {
        return negate().union(o).negate();
    }

    /** The UTF-8 bytes of any one of these code points. */
    Rx utf8() {
        List<Rx> options = new ArrayList<>();
        for (int i = 0; i < ranges.length; i += 2) {
            options.add(Rx.utf8(ranges[i], ranges[i + 1]));
        }
        return Rx.alt(options);
    }

    /**
     * Any one of these code points as it may appear inside a JSON string literal: unescaped UTF-8,
     * except {@code "}, {@code \} and control characters, which appear in their escaped form
     * ({@code \"}, {@code \\}, {@code \n}, ..., {@code \u001f}).
     */
    Rx jsonStringChar() {
        CodePoints mustEscape = of(0, 0x1F).union(of('"', '"')).union(of('\\', '\\'));
        List<Rx> options = new ArrayList<>();
        CodePoints raw = minus(mustEscape);
        if (!raw.isEmpty()) {
            options.add(raw.utf8());
        }
        if (contains(0, 0x1F) && contains('"', '"') && contains('\\', '\\')) {
            // all of them: the escape grammar, compactly
            options.add(Rx.seq(Rx.literal("\\"), Rx.alt(Rx.anyOf("\"\\bfnrt"),
                    Rx.seq(Rx.literal("u00"), Rx.anyOf("01"), Rx.alt(new Rx.Range('0', '9'), new Rx.Range('a', 'f'))))));
        } else {
            for (int i = 0; i < ranges.length; i += 2) {
                for (int c = ranges[i]; c <= Math.min(ranges[i + 1], '\\'); c++) {
                    if (c < 0x20 || c == '"' || c == '\\') {
                        options.add(Rx.literal(escape(c)));
                    }
                }
            }
        }
        return Rx.alt(options);
    }

    /** Whether every code point of {@code lo..hi} is in the set. */
    boolean contains(int lo, int hi) {
        for (int i = 0; i < ranges.length; i += 2) {
            if (ranges[i] <= lo && hi <= ranges[i + 1]) {
                return true;
            }
        }
        return false;
    }

    static String escape(int c) {
        return switch (c) {
            case '"' -> "\\\"";
            case '\\' -> "\\\\";
            case '\b' -> "\\b";
            case '\f' -> "\\f";
            case '\n' -> "\\n";
            case '\r' -> "\\r";
            case '\t' -> "\\t";
            default -> String.format("\\u%04x", c);
        };
    }
}
