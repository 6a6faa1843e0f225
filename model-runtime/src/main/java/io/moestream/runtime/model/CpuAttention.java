package io.moestream.runtime.model;

import io.moestream.runtime.kernel.MatmulPool;
import io.moestream.runtime.kv.CompressedAttention;
import io.moestream.runtime.kv.KvCodec;

import java.util.ArrayList;
import java.util.List;

/**
 * Causal attention of a CPU step over its sequences' paged caches, reading compressed blocks in
 * place: token t sees positions 0..pos[t] of its own sequence (a streaming head only sink +
 * window). Before the query at pos[t], the blocks that one-position-at-a-time would have sealed by
 * then are compressed for this layer, so a batched step stays bit-identical to single steps. The
 * step goes in rounds: each sequence's next tokens up to a block boundary, whose queries all see
 * the same sealed blocks (with float32 caches, where sealing changes nothing, the whole sequence),
 * are sealed for, then every (sequence, KV head) is a pool task over them in order (its query
 * heads' statistics its own in the head classifier), so one long prompt uses every thread.
 * Decoding (one token per sequence) is one round.
 */
final class CpuAttention {

    /** Each thread's attention scratch; all of them, for the bytes-read total. */
    private final ThreadLocal<CompressedAttention> local;
    private final List<CompressedAttention> all = new ArrayList<>();
    private final int kvHeads;
    private int[] next = new int[0];
    private int[] roundStart = new int[0];
    private int[] roundEnd = new int[0];

    CpuAttention(ModelConfig c) {
        this.kvHeads = c.kvHeads();
        this.local = ThreadLocal.withInitial(() -> {
            CompressedAttention a = CompressedAttention.of(c);
            synchronized (all) {
                all.add(a);
            }
            return a;
        });
    }

    /** K/V bytes read since the last {@link #resetBytesRead()}. */
    long bytesRead() {
        synchronized (all) {
            return all.stream().mapToLong(CompressedAttention::bytesRead).sum();
        }
    }

    void resetBytesRead() {
        synchronized (all) {
            all.forEach(CompressedAttention::resetBytesRead);
        }
    }

    /**
     * out[t] = attention of q[t] over its sequence at layer l, the step's K and V already written;
     * {@code sinks} (one logit per query head, or null) take part in each softmax.
     */
    void attend(int l, CpuStep s, float[][] q, float[][] out, float[] sinks) {
        int sequences = s.sequences;
        if (next.length < sequences) {
            next = new int[sequences];
            roundStart = new int[sequences];
            roundEnd = new int[sequences];
        }
        boolean float32 = allFloat32(s);
        System.arraycopy(s.sequenceStart, 0, next, 0, sequences);
        while (true) {
            boolean any = false;
            for (int g = 0; g < sequences; g++) {
                int t = next[g];
                int end = s.sequenceStart[g + 1];
                roundStart[g] = t;
                if (t < end) {
                    any = true;
                    if (!float32) {
                        int bt = s.caches[t].paged().blockTokens();
                        int block = s.pos[t] / bt;
                        s.caches[t].paged().sealLayerBelow(l, s.pos[t]);
                        while (t < end && s.pos[t] / bt == block) {
                            t++;
                        }
                    } else {
                        t = end;
                    }
                }
                roundEnd[g] = t;
                next[g] = t;
            }
            if (!any) {
                return;
            }
            MatmulPool.get().run(sequences * kvHeads, task -> {
                int g = task / kvHeads;
                CompressedAttention attention = local.get();
                for (int t = roundStart[g]; t < roundEnd[g]; t++) {
                    attention.setObserver(s.caches[t].headClassifier());
                    try {
                        attention.attendKvHead(s.caches[t].paged(), l, task % kvHeads, q[t], s.pos[t], out[t], s.order[t], sinks);
                    } finally {
                        attention.setObserver(null);
                    }
                }
            });
        }
    }

    private static boolean allFloat32(CpuStep s) {
        for (int t = 0; t < s.n; t++) {
            if (s.caches[t].paged().codec() != KvCodec.F32) {
                return false;
            }
        }
        return true;
    }
}
