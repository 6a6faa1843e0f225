package io.moestream.runtime.constrain;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;

/**
 * Whether two compiled languages share a string: a breadth-first walk of the product of their lazily
 * built {@link Dfa}s from the pair of start states. Both automata hold only live states, so the walk
 * finds a common accepted string exactly when one exists, and the first it finds is a shortest one.
 * {@link JsonSchemaCompiler} uses it to refuse {@code oneOf} alternatives that could give the same answer.
 */
final class Overlap {

    /**
     * Product states beyond this are refused: each new pair may expand a subset state of each
     * automaton, so a long shared structure costs seconds; tagged objects never get here.
     */
    static final int MAX_PAIRS = 2_000;

    private Overlap() {}

    /**
     * A shortest text both {@code a} and {@code b} accept, or null when they are disjoint.
     *
     * @throws UnsupportedSchemaException ({@code keyword}) when the walk passes {@link #MAX_PAIRS}
     */
    static String witness(Rx a, Rx b, String keyword, String at) {
        Dfa da = new Dfa(new Nfa(a));
        Dfa db = new Dfa(new Nfa(b));
        Map<Long, long[]> parent = new HashMap<>(); // pair -> {previous pair, byte}
        ArrayDeque<Long> queue = new ArrayDeque<>();
        parent.put(0L, null);
        queue.add(0L);
        while (!queue.isEmpty()) {
            long pair = queue.poll();
            int sa = (int) (pair >>> 32);
            int sb = (int) pair;
            if (da.accepting(sa) && db.accepting(sb)) {
                return text(parent, pair);
            }
            for (int c = 0; c < 256; c++) {
                int na = da.step(sa, c);
                if (na == Dfa.DEAD) {
                    continue;
                }
                int nb = db.step(sb, c);
                long next = ((long) na << 32) | (nb & 0xFFFFFFFFL);
                if (nb == Dfa.DEAD || parent.containsKey(next)) {
                    continue;
                }
                if (parent.size() == MAX_PAIRS) {
                    throw new UnsupportedSchemaException(keyword, "JSON schema at " + at + ": the alternatives of " + keyword
                            + " share too much structure to check that they are disjoint (give object alternatives a"
                            + " tag: a member they require with different values; or use anyOf)");
                }
                parent.put(next, new long[] {pair, c});
                queue.add(next);
            }
        }
        return null;
    }

    private static String text(Map<Long, long[]> parent, long pair) {
        ByteArrayOutputStream reversed = new ByteArrayOutputStream();
        for (long[] p = parent.get(pair); p != null; p = parent.get(p[0])) {
            reversed.write((int) p[1]);
        }
        byte[] bytes = reversed.toByteArray();
        for (int i = 0, j = bytes.length - 1; i < j; i++, j--) {
            byte t = bytes[i];
            bytes[i] = bytes[j];
            bytes[j] = t;
        }
        return new String(bytes, StandardCharsets.UTF_8);
    }
}
