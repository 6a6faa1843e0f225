package io.moestream.runtime.constrain;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The deterministic automaton of an {@link Nfa}, built lazily (subset construction): a state is a
 * set of live NFA states, and its 256 byte transitions are computed the first time it is entered.
 * State 0 is the start; {@link #DEAD} means the byte leads nowhere. Every state but {@code DEAD} can
 * still reach acceptance (the NFA holds only live states), so an automaton walk never dead-ends.
 * Thread-safe: one compiled grammar serves every sequence that uses it.
 */
final class Dfa {

    static final int DEAD = -1;
    /** Subset states beyond this are refused (an ambiguous anyOf can blow up the subset construction). */
    static final int MAX_STATES = 200_000;

    private final Nfa nfa;
    private final Map<Key, Integer> ids = new HashMap<>();
    private final List<int[]> sets = new ArrayList<>();
    private final List<int[]> transitions = new ArrayList<>(); // null until computed
    private final BitSet accepting = new BitSet();

    Dfa(Nfa nfa) {
        this.nfa = nfa;
        BitSet start = new BitSet();
        start.set(nfa.start);
        if (intern(nfa.closure(start)) != 0) {
            throw new UnsupportedSchemaException("size", "the constraint accepts no output at all");
        }
    }

    /** The state after {@code b} (0..255) from {@code state}, or {@link #DEAD}. */
    synchronized int step(int state, int b) {
        int[] t = transitions.get(state);
        if (t == null) {
            t = expand(state);
        }
        return t[b];
    }

    synchronized boolean accepting(int state) {
        return accepting.get(state);
    }

    synchronized int states() {
        return sets.size();
    }

    private int[] expand(int state) {
        BitSet[] next = new BitSet[256];
        for (int s : sets.get(state)) {
            nfa.step(s, next);
        }
        int[] t = new int[256];
        for (int b = 0; b < 256; b++) {
            t[b] = next[b] == null ? DEAD : intern(nfa.closure(next[b]));
        }
        transitions.set(state, t);
        return t;
    }

    private int intern(int[] set) {
        if (set.length == 0) {
            return DEAD;
        }
        Key key = new Key(set);
        Integer id = ids.get(key);
        if (id != null) {
            return id;
        }
        if (sets.size() == MAX_STATES) {
            throw new UnsupportedSchemaException("size", "the constraint's automaton grew past " + MAX_STATES
                    + " states (alternatives of anyOf/oneOf overlap too much)");
        }
        int n = sets.size();
        ids.put(key, n);
        sets.add(set);
        transitions.add(null);
        if (Arrays.binarySearch(set, nfa.accept) >= 0) {
            accepting.set(n);
        }
        return n;
    }

    private record Key(int[] set) {
        @Override
        public boolean equals(Object o) {
            return o instanceof Key k && Arrays.equals(set, k.set);
        }

        @Override
        public int hashCode() {
            return Arrays.hashCode(set);
        }
    }
}
