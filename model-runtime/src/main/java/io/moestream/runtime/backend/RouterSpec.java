package io.moestream.runtime.backend;

import io.moestream.runtime.moe.RoutingConfig;

/**
 * MoE routing as llama.cpp implements its variants. Per token: probabilities {@code p} from the
 * router logits by {@link Gating}; selection scores {@code b = p + bias} (bias only chooses, never
 * weighs); with {@code groups > 1} experts are split into contiguous groups, a group scores the sum
 * of its two largest b, and only the best {@code groupsUsed} groups stay eligible; the top
 * {@code k} eligible experts by b are chosen (ties to the lower id); their weights are p (or, for
 * {@link Gating#SOFTMAX_AFTER_TOPK}, the softmax over the chosen logits), divided by
 * {@code max(sum, 6.103515625e-5)} when {@code normalize}, then multiplied by {@code scale} unless
 * it is 0 or 1.
 *
 * @param experts    experts per layer
 * @param k          experts chosen per token
 * @param gating     how logits become probabilities
 * @param normalize  renormalize the chosen weights to sum 1
 * @param scale      weight scale (0 or 1 = none)
 * @param groups     expert groups (1 = no group limit)
 * @param groupsUsed groups kept per token
 */
public record RouterSpec(int experts, int k, Gating gating, boolean normalize, float scale, int groups, int groupsUsed) {

    /** How router logits become expert probabilities. */
    public enum Gating {
        SOFTMAX,
        SIGMOID,
        /** Choose on raw logits, weigh with the softmax over the chosen ones (gpt-oss). */
        SOFTMAX_AFTER_TOPK
    }

    public RouterSpec {
        if (k <= 0 || k > experts) {
            throw new IllegalArgumentException("k " + k + " must be in 1.." + experts);
        }
        if (groups <= 0 || experts % groups != 0 || groupsUsed <= 0 || groupsUsed > groups) {
            throw new IllegalArgumentException("groups " + groups + " must divide experts " + experts
                    + " and groupsUsed " + groupsUsed + " must be in 1.." + groups);
        }
        if (groups > 1 && k > groupsUsed * (experts / groups)) {
            throw new IllegalArgumentException("k " + k + " exceeds the experts of " + groupsUsed + " groups");
        }
    }

    /** The routing of a model ({@link RoutingConfig}: softmax or sigmoid, groups when more than one). */
    public static RouterSpec of(RoutingConfig r) {
        Gating gating = r.gating() == RoutingConfig.Gating.SIGMOID ? Gating.SIGMOID : Gating.SOFTMAX;
        int groups = r.grouped() ? r.groups() : 1;
        int groupsUsed = r.grouped() ? r.groupsUsed() : 1;
        return new RouterSpec(r.experts(), r.topK(), gating, r.normalize(), r.scale(), groups, groupsUsed);
    }

    /** Mixtral / Qwen3-MoE: softmax over all experts, top-k, renormalized. */
    public static RouterSpec mixtral(int experts, int k) {
        return new RouterSpec(experts, k, Gating.SOFTMAX, true, 1f, 1, 1);
    }
}
