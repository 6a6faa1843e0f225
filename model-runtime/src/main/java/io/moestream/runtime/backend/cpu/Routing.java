package io.moestream.runtime.backend.cpu;

import io.moestream.runtime.backend.RouterSpec;

/** The routing rules of {@link RouterSpec} for one token; the CUDA router kernel implements the same steps. */
final class Routing {

    private Routing() {}

    /**
     * Chooses {@code spec.k()} experts for one token from its router logits (overwritten with the
     * probabilities) and writes their ids and weights.
     */
    static void route(float[] logits, float[] bias, RouterSpec spec, int[] chosen, float[] weights) {
        int e = spec.experts();
        float[] p = logits;
        float[] raw = spec.gating() == RouterSpec.Gating.SOFTMAX_AFTER_TOPK ? p.clone() : null;
        switch (spec.gating()) {
            case SOFTMAX -> softmax(p, e);
            case SIGMOID -> {
                for (int i = 0; i < e; i++) {
                    p[i] = (float) (1.0 / (1.0 + Math.exp(-p[i]))); // as the engine's Router
                }
            }
            case SOFTMAX_AFTER_TOPK -> { }
        }
        float[] sel = new float[e];
        for (int i = 0; i < e; i++) {
            sel[i] = bias == null ? p[i] : p[i] + bias[i];
        }
        if (spec.groups() > 1) {
            limitGroups(sel, spec);
        }
        boolean[] taken = new boolean[e];
        for (int j = 0; j < spec.k(); j++) {
            int best = -1;
            for (int i = 0; i < e; i++) {
                if (!taken[i] && sel[i] != Float.NEGATIVE_INFINITY && (best < 0 || sel[i] > sel[best])) {
                    best = i;
                }
            }
            taken[best] = true;
            chosen[j] = best;
        }
        if (raw != null) {
            float max = Float.NEGATIVE_INFINITY;
            for (int j = 0; j < spec.k(); j++) {
                max = Math.max(max, raw[chosen[j]]);
            }
            float sum = 0;
            for (int j = 0; j < spec.k(); j++) {
                weights[j] = (float) Math.exp(raw[chosen[j]] - max);
                sum += weights[j];
            }
            for (int j = 0; j < spec.k(); j++) {
                weights[j] /= sum;
            }
        } else {
            for (int j = 0; j < spec.k(); j++) {
                weights[j] = p[chosen[j]];
            }
        }
        if (spec.normalize()) {
            float sum = 0;
            for (int j = 0; j < spec.k(); j++) {
                sum += weights[j];
            }
            sum = Math.max(sum, 6.103515625e-5f);
            for (int j = 0; j < spec.k(); j++) {
                weights[j] /= sum;
            }
        }
        if (spec.scale() != 0f && spec.scale() != 1f) {
            for (int j = 0; j < spec.k(); j++) {
                weights[j] *= spec.scale();
            }
        }
    }

    /** Keeps the {@code groupsUsed} groups whose two best scores sum highest; the rest become -inf. */
    static void limitGroups(float[] sel, RouterSpec spec) {
        int per = spec.experts() / spec.groups();
        float[] groupScore = new float[spec.groups()];
        for (int g = 0; g < spec.groups(); g++) {
            float best = Float.NEGATIVE_INFINITY;
            float second = Float.NEGATIVE_INFINITY;
            for (int i = g * per; i < (g + 1) * per; i++) {
                if (sel[i] > best) {
                    second = best;
                    best = sel[i];
                } else if (sel[i] > second) {
                    second = sel[i];
                }
            }
            groupScore[g] = per == 1 ? best : best + second;
        }
        boolean[] keep = new boolean[spec.groups()];
        for (int j = 0; j < spec.groupsUsed(); j++) {
            int best = -1;
            for (int g = 0; g < spec.groups(); g++) {
                if (!keep[g] && (best < 0 || groupScore[g] > groupScore[best])) {
                    best = g;
                }
            }
            keep[best] = true;
        }
        for (int g = 0; g < spec.groups(); g++) {
            if (!keep[g]) {
                for (int i = g * per; i < (g + 1) * per; i++) {
                    sel[i] = Float.NEGATIVE_INFINITY;
                }
            }
        }
    }

    /** Softmax in place as the CPU engine computes it. */
    static void softmax(float[] v, int n) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            max = Math.max(max, v[i]);
        }
        float sum = 0;
        for (int i = 0; i < n; i++) {
            v[i] = (float) Math.exp(v[i] - max);
            sum += v[i];
        }
        for (int i = 0; i < n; i++) {
            v[i] /= sum;
        }
    }
}
