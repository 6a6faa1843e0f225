package io.moestream.runtime.moe;

import io.moestream.runtime.kernel.CpuMath;

import java.util.Arrays;

/**
 * Picks the experts of one token and their mixing weights from its router logits, for every
 * routing variant in {@link RoutingConfig} (llama.cpp's {@code build_moe_ffn}):
 *
 * <ol>
 *   <li>scores {@code s} = softmax(logits) over all experts, sigmoid(logits) per expert, or the
 *       logits themselves ({@code SOFTMAX_WEIGHT});</li>
 *   <li>selection scores {@code b = s + bias} (the optional bias only steers the choice);</li>
 *   <li>with groups: score each group by the sum of its two largest {@code b}, keep the
 *       {@code groupsUsed} best groups, and drop the experts of the others;</li>
 *   <li>the {@code topK} largest {@code b} are the chosen experts (ties: the lower index);</li>
 *   <li>their weights are the unbiased {@code s} ({@code SOFTMAX_WEIGHT}: the softmax of those
 *       k), optionally divided by their sum (at least {@link #MIN_WEIGHT_SUM}), then multiplied by
 *       {@code scale}.</li>
 * </ol>
 *
 * Arithmetic is llama.cpp's CPU arithmetic (softmax as {@link CpuMath#softmax}, sigmoid with
 * libm's expf, the weight sum in double), in the order above, so results do not depend on the batch. Not thread-safe
 * (scratch buffers); one per engine.
 */
public final class Router {

    /** llama.cpp clamps the weight sum to this (2^-14) before dividing. */
    public static final float MIN_WEIGHT_SUM = 6.103515625e-5f;

    private final RoutingConfig config;
    private final float[] scores;    // (experts) s
    private final float[] selection; // (experts) b, -inf outside the kept groups
    private final float[] groupScores; // (groups)
    private final boolean[] groupKept; // (groups)

    public Router(RoutingConfig config) {
        this.config = config;
        this.scores = new float[config.experts()];
        this.selection = new float[config.experts()];
        this.groupScores = new float[Math.max(1, config.groups())];
        this.groupKept = new boolean[Math.max(1, config.groups())];
    }

    public RoutingConfig config() {
        return config;
    }

    /**
     * Chooses {@code topK} experts for one token.
     *
     * @param logits        (experts) router output W_router x; not modified
     * @param selectionBias (experts) added to the scores for choosing only, or null
     * @param ids           receives the chosen experts, best first ({@code topK} entries)
     * @param weights       receives their weights ({@code topK} entries)
     */
    public void route(float[] logits, float[] selectionBias, int[] ids, float[] weights) {
        int n = config.experts();
        int k = config.topK();
        switch (config.gating()) {
            case SOFTMAX -> softmax(logits, scores, n);
            case SIGMOID -> {
                for (int e = 0; e < n; e++) {
                    scores[e] = 1f / (1f + CpuMath.expf(-logits[e]));
                }
            }
            case SOFTMAX_WEIGHT -> System.arraycopy(logits, 0, scores, 0, n);
        }
        for (int e = 0; e < n; e++) {
            selection[e] = selectionBias == null ? scores[e] : scores[e] + selectionBias[e];
        }
        if (config.grouped()) {
            limitToBestGroups();
        }
        for (int j = 0; j < k; j++) {
            int best = -1;
            for (int e = 0; e < n; e++) {
                if (!taken(ids, j, e) && (best < 0 || selection[e] > selection[best])) {
                    best = e;
                }
            }
            ids[j] = best;
            weights[j] = scores[best];
        }
        if (config.gating() == RoutingConfig.Gating.SOFTMAX_WEIGHT) {
            softmax(weights.clone(), weights, k);
        }
        if (config.normalize()) {
            double total = 0;
            for (int j = 0; j < k; j++) {
                total += weights[j];
            }
            float sum = Math.max((float) total, MIN_WEIGHT_SUM);
            for (int j = 0; j < k; j++) {
                weights[j] /= sum;
            }
        }
        if (config.scale() != 1f) {
            for (int j = 0; j < k; j++) {
                weights[j] *= config.scale();
            }
        }
    }

    /** Sets {@code selection} to -inf for every expert outside the {@code groupsUsed} best groups. */
    private void limitToBestGroups() {
        int groups = config.groups();
        int size = config.experts() / groups;
        for (int g = 0; g < groups; g++) {
            float first = Float.NEGATIVE_INFINITY;
            float second = Float.NEGATIVE_INFINITY;
            for (int e = g * size; e < (g + 1) * size; e++) {
                float b = selection[e];
                if (b > first) {
                    second = first;
                    first = b;
                } else if (b > second) {
                    second = b;
                }
            }
            groupScores[g] = (float) ((double) first + second);
        }
        Arrays.fill(groupKept, false);
        for (int j = 0; j < config.groupsUsed(); j++) {
            int best = -1;
            for (int g = 0; g < groups; g++) {
                if (!groupKept[g] && (best < 0 || groupScores[g] > groupScores[best])) {
                    best = g;
                }
            }
            groupKept[best] = true;
        }
        for (int g = 0; g < groups; g++) {
            if (!groupKept[g]) {
                Arrays.fill(selection, g * size, (g + 1) * size, Float.NEGATIVE_INFINITY);
            }
        }
    }

    private static boolean taken(int[] ids, int count, int e) {
        for (int j = 0; j < count; j++) {
            if (ids[j] == e) {
                return true;
            }
        }
        return false;
    }

    private static void softmax(float[] in, float[] out, int n) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            max = Math.max(max, in[i]);
        }
        CpuMath.softmax(in, out, n, max);
    }
}
