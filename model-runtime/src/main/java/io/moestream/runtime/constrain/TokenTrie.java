package io.moestream.runtime.constrain;

import io.moestream.runtime.tokenizer.Tokenizer;
import java.util.Arrays;
import java.util.Map;
import java.util.WeakHashMap;

/**
 * The vocabulary's tokens as a byte trie (each token's decoded bytes), laid out in preorder: node
 * {@code i}'s subtree is {@code i .. end[i]-1}, so a walk that finds a byte impossible skips the
 * whole subtree with one jump. Tokens with no bytes (control tokens) are not in the trie. Built
 * once per tokenizer and shared.
 */
final class TokenTrie {

    private static final Map<Tokenizer, TokenTrie> TRIES = new WeakHashMap<>();

    final int vocabSize;
    final byte[] label; // byte on the edge into node i (node 0 = root, no label)
    final int[] depth;
    final int[] end; // one past the last node of i's subtree
    final int[][] tokens; // ids whose bytes end at node i, or null
    final byte[][] bytes; // each token's bytes

    private TokenTrie(byte[][] bytes) {
        this.vocabSize = bytes.length;
        this.bytes = bytes;
        Integer[] order = new Integer[bytes.length];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> Arrays.compareUnsigned(bytes[a], bytes[b]));
        int total = 1;
        for (byte[] b : bytes) {
            total += b.length; // upper bound on nodes
        }
        byte[] lab = new byte[total];
        int[] dep = new int[total];
        int[] en = new int[total];
        int[][] tok = new int[total][];
        int size = 1;
        int[] path = new int[64]; // path[d] = node at depth d on the current branch
        int pathLen = 1; // path[0] = root
        byte[] prev = new byte[0];
        for (int id : order) {
            byte[] b = bytes[id];
            if (b.length == 0) {
                continue;
            }
            int common = 0;
            while (common < Math.min(prev.length, b.length) && prev[common] == b[common] && common + 1 < pathLen) {
                common++;
            }
            while (pathLen > common + 1) {
                en[path[--pathLen]] = size;
            }
            for (int d = common; d < b.length; d++) {
                if (pathLen == path.length) {
                    path = Arrays.copyOf(path, path.length * 2);
                }
                lab[size] = b[d];
                dep[size] = d + 1;
                path[pathLen++] = size++;
            }
            int leaf = path[pathLen - 1];
            tok[leaf] = tok[leaf] == null ? new int[] {id} : append(tok[leaf], id);
            prev = b;
        }
        while (pathLen > 0) {
            en[path[--pathLen]] = size;
        }
        this.label = Arrays.copyOf(lab, size);
        this.depth = Arrays.copyOf(dep, size);
        this.end = Arrays.copyOf(en, size);
        this.tokens = Arrays.copyOf(tok, size);
    }

    static TokenTrie of(Tokenizer tokenizer) {
        synchronized (TRIES) {
            return TRIES.computeIfAbsent(tokenizer, t -> {
                byte[][] b = new byte[t.vocabSize()][];
                for (int id = 0; id < b.length; id++) {
                    b[id] = t.tokenBytes(id);
                }
                return new TokenTrie(b);
            });
        }
    }

    /** A trie over explicit token bytes (tests). */
    static TokenTrie of(byte[][] bytes) {
        return new TokenTrie(bytes);
    }

    int nodes() {
        return label.length;
    }

    private static int[] append(int[] a, int id) {
        int[] out = Arrays.copyOf(a, a.length + 1);
        out[a.length] = id;
        return out;
    }
}
