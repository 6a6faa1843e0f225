package io.moestream.runtime.moe;

/**
 * How a mixture-of-experts layer picks its experts, as llama.cpp's {@code build_moe_ffn} does. Every
 * architecture's routing is one of these values; the optional per-expert selection bias is a
 * tensor of the layer and is passed to {@link Router#route} separately.
 *
 * @param gating      how router logits become expert scores
 * @param experts     experts per layer
 * @param topK        experts chosen per token ({@code expert_used_count})
 * @param normalize   divide the chosen weights by their sum (at least 2^-14) before scaling
 * @param scale       multiply the chosen weights by this ({@code expert_weights_scale}); 1 = off
 * @param groups      {@code expert_group_count}; &gt; 1 turns on group-limited routing, experts
 *                    {@code [g * experts/groups, (g+1) * experts/groups)} form group g
 * @param groupsUsed  {@code expert_group_used_count}: groups kept per token when {@code groups > 1}
 */
public record RoutingConfig(Gating gating, int experts, int topK, boolean normalize, float scale, int groups, int groupsUsed) {

    /** Turns router logits into expert scores; the same scores (unbiased) become the weights. */
    public enum Gating {
        /** softmax over all experts (llama.cpp gating func 1, the default). */
        SOFTMAX,
        /** an independent sigmoid per expert (gating func 2, DeepSeek-V3 / Ling 2.0). */
        SIGMOID,
        /** the raw logits choose; the weights are the softmax over the chosen experts' logits (gating func 3, gpt-oss). */
        SOFTMAX_WEIGHT;

        /** The GGUF {@code expert_gating_func} code: 1 softmax, 2 sigmoid, 3 softmax over the chosen. */
        public static Gating ofCode(int code) {
            return switch (code) {
                case 1 -> SOFTMAX;
                case 2 -> SIGMOID;
                case 3 -> SOFTMAX_WEIGHT;
                default -> throw new IllegalArgumentException("expert_gating_func " + code
                        + " is not supported (1 = softmax, 2 = sigmoid, 3 = softmax over the chosen)");
            };
        }
    }

    public RoutingConfig {
        if (experts <= 0 || topK <= 0 || topK > experts) {
            throw new IllegalArgumentException("expert_used_count " + topK + " must be in 1..expert_count " + experts);
        }
        if (!(scale > 0) || Float.isInfinite(scale)) {
            throw new IllegalArgumentException("expert_weights_scale must be a positive number, got " + scale);
        }
        if (groups > 1) {
            if (groups >= experts || experts % groups != 0) {
                throw new IllegalArgumentException("expert_group_count " + groups + " must divide expert_count " + experts + " and be smaller");
            }
            if (experts / groups < 2) {
                throw new IllegalArgumentException("group routing scores a group by its top-2 experts, so each of the "
                        + groups + " groups needs >= 2 of the " + experts + " experts");
            }
            if (groupsUsed <= 0 || groupsUsed >= groups) {
                throw new IllegalArgumentException("expert_group_used_count " + groupsUsed + " must be in 1.." + (groups - 1));
            }
            if ((long) groupsUsed * (experts / groups) < topK) {
                throw new IllegalArgumentException(groupsUsed + " groups of " + (experts / groups) + " experts cannot supply "
                        + topK + " experts (expert_used_count)");
            }
        }
    }

    /** Mixtral / qwen3moe routing: softmax, top-k, renormalised, unscaled, no groups. */
    public static RoutingConfig softmaxTopK(int experts, int topK, boolean normalize) {
        return new RoutingConfig(Gating.SOFTMAX, experts, topK, normalize, 1f, 0, 0);
    }

    /** Whether experts are first limited to the best groups. */
    public boolean grouped() {
        return groups > 1;
    }
}
