package io.moestream.runtime.constrain;

import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.BitSet;

/**
 * A Thompson NFA over bytes built from an {@link Rx}: states with byte-range edges and epsilon
 * edges, one start and one accepting state. States from which the accepting state cannot be reached
 * are marked, so the {@link Dfa} never enters a dead end.
 */
final class Nfa {

    /** Expansion limit: a schema that needs more states (huge repetition counts) is refused. */
    static final int MAX_STATES = 500_000;

    private int size;
    // per state: byte edges (lo, hi, target triples) and epsilon targets
    private int[][] edges = new int[64][];
    private int[] edgeCount = new int[64];
    private int[][] eps = new int[64][];
    private int[] epsCount = new int[64];

    final int start;
    final int accept;
    private final BitSet live;

    Nfa(Rx rx) {
        this.start = newState();
        this.accept = emit(rx, start);
        this.live = coReachable();
    }

    int size() {
        return size;
    }

    boolean live(int state) {
        return live.get(state);
    }

    /** The epsilon closure of {@code states} (a set, modified), restricted to live states. */
    int[] closure(BitSet states) {
        ArrayDeque<Integer> work = new ArrayDeque<>();
        states.stream().forEach(work::add);
        while (!work.isEmpty()) {
            int s = work.pop();
            for (int i = 0; i < epsCount[s]; i++) {
                int t = eps[s][i];
                if (!states.get(t)) {
                    states.set(t);
                    work.push(t);
                }
            }
        }
        states.and(live);
        return states.stream().toArray();
    }

    /** Adds to {@code next[b]} the targets of each byte edge of {@code state}. */
    void step(int state, BitSet[] next) {
        int[] e = edges[state];
        for (int i = 0; i < edgeCount[state]; i += 3) {
            for (int b = e[i]; b <= e[i + 1]; b++) {
                if (next[b] == null) {
                    next[b] = new BitSet();
                }
                next[b].set(e[i + 2]);
            }
        }
    }

    private int newState() {
        if (size == MAX_STATES) {
            throw new UnsupportedSchemaException("size", "the constraint needs more than " + MAX_STATES
                    + " automaton states (lower maxLength/maxItems or simplify the schema)");
        }
        if (size == edges.length) {
            int n = size * 2;
            edges = Arrays.copyOf(edges, n);
            edgeCount = Arrays.copyOf(edgeCount, n);
            eps = Arrays.copyOf(eps, n);
            epsCount = Arrays.copyOf(epsCount, n);
        }
        edges[size] = new int[0];
        eps[size] = new int[0];
        return size++;
    }

    private void edge(int from, int lo, int hi, int to) {
        if (edgeCount[from] + 3 > edges[from].length) {
            edges[from] = Arrays.copyOf(edges[from], Math.max(6, edges[from].length * 2));
        }
        int[] e = edges[from];
        e[edgeCount[from]++] = lo;
        e[edgeCount[from]++] = hi;
        e[edgeCount[from]++] = to;
    }

    private void epsilon(int from, int to) {
        if (epsCount[from] == eps[from].length) {
            eps[from] = Arrays.copyOf(eps[from], Math.max(2, eps[from].length * 2));
        }
        eps[from][epsCount[from]++] = to;
    }

    /** Emits {@code rx} starting at state {@code from}; returns the state where it ends. */
    private int emit(Rx rx, int from) {
        if (rx instanceof Rx.Range r) {
            int e = newState();
            edge(from, r.lo(), r.hi(), e);
            return e;
        }
        if (rx instanceof Rx.Seq q) {
            int cur = from;
            for (Rx part : q.parts()) {
                cur = emit(part, cur);
            }
            return cur;
        }
        if (rx instanceof Rx.Alt a) {
            int e = newState();
            for (Rx option : a.options()) {
                // each option starts in a state of its own, so a loop inside one cannot reach another
                int s = newState();
                epsilon(from, s);
                epsilon(emit(option, s), e);
            }
            return e;
        }
        Rx.Repeat r = (Rx.Repeat) rx;
        int cur = from;
        for (int i = 0; i < r.min(); i++) {
            cur = emit(r.body(), cur);
        }
        if (r.max() < 0) {
            int loop = newState();
            epsilon(cur, loop);
            epsilon(emit(r.body(), loop), loop);
            return loop;
        }
        int e = newState();
        epsilon(cur, e);
        for (int i = r.min(); i < r.max(); i++) {
            cur = emit(r.body(), cur);
            epsilon(cur, e);
        }
        return e;
    }

    /** States from which {@link #accept} is reachable (reverse search). */
    private BitSet coReachable() {
        int[][] rev = new int[size][];
        int[] revCount = new int[size];
        for (int s = 0; s < size; s++) {
            for (int i = 0; i < edgeCount[s]; i += 3) {
                revCount[edges[s][i + 2]]++;
            }
            for (int i = 0; i < epsCount[s]; i++) {
                revCount[eps[s][i]]++;
            }
        }
        for (int s = 0; s < size; s++) {
            rev[s] = new int[revCount[s]];
            revCount[s] = 0;
        }
        for (int s = 0; s < size; s++) {
            for (int i = 0; i < edgeCount[s]; i += 3) {
                int t = edges[s][i + 2];
                rev[t][revCount[t]++] = s;
            }
            for (int i = 0; i < epsCount[s]; i++) {
                int t = eps[s][i];
                rev[t][revCount[t]++] = s;
            }
        }
        BitSet seen = new BitSet(size);
        ArrayDeque<Integer> work = new ArrayDeque<>();
        seen.set(accept);
        work.push(accept);
        while (!work.isEmpty()) {
            int t = work.pop();
            for (int s : rev[t]) {
                if (!seen.get(s)) {
                    seen.set(s);
                    work.push(s);
                }
            }
        }
        return seen;
    }
}
