package io.moestream.runtime.model;

import io.moestream.runtime.kernel.DotOrder;

/**
 * The rows of one CPU step: row t is one token, with its sequence's cache, its position and the sum
 * order of its products; each sequence's rows are consecutive.
 */
final class CpuStep {

    final int n;
    final int[] tokens;
    final int[] pos;
    final DotOrder[] order;
    final KvCache[] caches;
    /** First row of each sequence, then n. */
    final int[] sequenceStart;
    final int sequences;
    /** The last row of each sequence that wants logits, in plan order. */
    final int[] logitRows;
    /** Filled by the output head: the logits of those rows. */
    final float[][] logits;

    CpuStep(StepPlan plan) {
        n = plan.tokens();
        tokens = new int[n];
        pos = new int[n];
        order = new DotOrder[n];
        caches = new KvCache[n];
        sequences = plan.sequences().size();
        sequenceStart = new int[sequences + 1];
        int wanted = 0;
        for (StepPlan.Sequence s : plan.sequences()) {
            wanted += s.logits() ? 1 : 0;
        }
        logitRows = new int[wanted];
        logits = new float[wanted][];
        int t = 0;
        int g = 0;
        wanted = 0;
        for (StepPlan.Sequence s : plan.sequences()) {
            sequenceStart[g++] = t;
            int start = s.cache().length();
            int len = s.tokens().length;
            for (int j = 0; j < len; j++, t++) {
                tokens[t] = s.tokens()[j];
                caches[t] = s.cache();
                pos[t] = start + j;
                order[t] = len == 1 ? DotOrder.VEC_DOT : j < len - len % 4 ? DotOrder.TINYBLAS : DotOrder.TINYBLAS_TAIL;
            }
            if (s.logits()) {
                logitRows[wanted++] = t - 1;
            }
        }
        sequenceStart[sequences] = n;
    }
}
