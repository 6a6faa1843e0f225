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
    static final int MAX_STATES = 400_000;

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
        int[] f = emit(rx);
        this.start = f[0];
        this.accept = f[1];
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

    /** Emits {@code rx}; returns its {start, end} states. */
    private int[] emit(Rx rx) {
        if (rx instanceof Rx.Range r) {
            int s = newState();
            int e = newState();
            edge(s, r.lo(), r.hi(), e);
            return new int[] {s, e};
        }
        if (rx instanceof Rx.Seq q) {
            int s = newState();
            int cur = s;
            for (Rx part : q.parts()) {
                int[] f = emit(part);
                epsilon(cur, f[0]);
                cur = f[1];
            }
            return new int[] {s, cur};
        }
        if (rx instanceof Rx.Alt a) {
            int s = newState();
            int e = newState();
            for (Rx option : a.options()) {
                int[] f = emit(option);
                epsilon(s, f[0]);
                epsilon(f[1], e);
            }
            return new int[] {s, e};
        }
        Rx.Repeat r = (Rx.Repeat) rx;
        int s = newState();
        int cur = s;
        for (int i = 0; i < r.min(); i++) {
            int[] f = emit(r.body());
            epsilon(cur, f[0]);
            cur = f[1];
        }
        if (r.max() < 0) {
            int loop = newState();
            epsilon(cur, loop);
            int[] f = emit(r.body());
            epsilon(loop, f[0]);
            epsilon(f[1], loop);
            return new int[] {s, loop};
        }
        int e = newState();
        epsilon(cur, e);
        for (int i = r.min(); i < r.max(); i++) {
            int[] f = emit(r.body());
            epsilon(cur, f[0]);
            epsilon(f[1], e);
            cur = f[1];
        }
        return new int[] {s, e};
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
