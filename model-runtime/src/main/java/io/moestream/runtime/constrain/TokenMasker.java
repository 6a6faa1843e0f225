package io.moestream.runtime.constrain;

import java.util.BitSet;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The allowed-token mask of each automaton state for one vocabulary: one preorder walk of the
 * {@link TokenTrie} from the state, skipping every subtree whose prefix the automaton rejects (so
 * shared token prefixes are checked once, and impossible ones cost one jump). The automaton is
 * deterministic, so a state's mask depends on the state alone and is cached: after the first
 * visit of a state (of the first {@value #MAX_CACHED}), masking is a lookup. EOS is allowed
 * exactly in accepting states; tokens without bytes (other control tokens) never are.
 */
final class TokenMasker {

    /** Masks kept per vocabulary and grammar (each vocab/8 bytes); states beyond are walked each time. */
    static final int MAX_CACHED = 4096;

    private final Dfa dfa;
    private final TokenTrie trie;
    private final int eos;
    private final ConcurrentHashMap<Integer, BitSet> masks = new ConcurrentHashMap<>();

    TokenMasker(Dfa dfa, TokenTrie trie, int eos) {
        this.dfa = dfa;
        this.trie = trie;
        this.eos = eos;
    }

    int vocabSize() {
        return trie.vocabSize;
    }

    int eos() {
        return eos;
    }

    /** The tokens allowed in {@code state} (shared: never modify it). */
    BitSet mask(int state) {
        BitSet m = masks.get(state);
        if (m == null) {
            m = compute(state);
            if (masks.size() < MAX_CACHED) {
                masks.putIfAbsent(state, m);
            }
        }
        return m;
    }

    /** The mask computed afresh, bypassing the cache (for measuring the walk). */
    BitSet compute(int state) {
        BitSet allowed = new BitSet(trie.vocabSize);
        int[] at = new int[64]; // automaton state at each trie depth on the current branch
        at[0] = state;
        int n = trie.nodes();
        int i = 1;
        while (i < n) {
            int d = trie.depth[i];
            int s = dfa.step(at[d - 1], trie.label[i] & 0xFF);
            if (s == Dfa.DEAD) {
                i = trie.end[i];
                continue;
            }
            if (d == at.length) {
                at = java.util.Arrays.copyOf(at, at.length * 2);
            }
            at[d] = s;
            int[] ids = trie.tokens[i];
            if (ids != null) {
                for (int id : ids) {
                    allowed.set(id);
                }
            }
            i++;
        }
        if (eos >= 0) {
            allowed.set(eos, dfa.accepting(state)); // by acceptance alone, even if EOS has bytes
        }
        return allowed;
    }

    /** The state after the bytes of {@code token} from {@code state}, or {@link Dfa#DEAD}. */
    int advance(int state, int token) {
        byte[] b = trie.bytes[token];
        int s = state;
        for (int i = 0; i < b.length && s != Dfa.DEAD; i++) {
            s = dfa.step(s, b[i] & 0xFF);
        }
        return b.length == 0 ? Dfa.DEAD : s;
    }

    boolean accepting(int state) {
        return dfa.accepting(state);
    }
}
