package io.moestream.runtime.arch;

import static io.moestream.runtime.graph.Act.X;
import static io.moestream.runtime.graph.Act.XB;
import static io.moestream.runtime.graph.Act.XB2;

import io.moestream.runtime.gguf.GgufFile;
import io.moestream.runtime.gguf.GgufFormatException;
import io.moestream.runtime.graph.Blocks;
import io.moestream.runtime.graph.Ops;
import io.moestream.runtime.graph.TensorRole;
import io.moestream.runtime.model.ModelConfig;
import io.moestream.runtime.moe.RoutingConfig;

/**
 * {@code gpt-oss} (llama.cpp's OPENAI_MOE): q/k/v and output biases, NEOX RoPE with YaRN when
 * {@code rope.scaling.type} is "yarn", attention sinks in every layer, sliding-window layers
 * alternating with full ones ({@code attention.sliding_window}, required; period
 * {@code attention.sliding_window_pattern}, default 2: even layers slide), {@code post_attention_norm}
 * before the FFN, a router with a bias whose top-k logits are softmaxed into the weights, experts with
 * biases and the clamped SwiGLU ({@link Ops.Glu#SWIGLU_OAI}). {@code expert_weights_scale} is
 * ignored, as llama.cpp does.
 */
final class GptOss implements Architecture {

    @Override
    public String name() {
        return "gpt-oss";
    }

    @Override
    public void configure(GgufFile gguf, ModelConfig.Builder b) throws GgufFormatException {
        String p = b.prefix();
        if (b.experts() == 0) {
            throw new GgufFormatException(b.file() + ": missing required key '" + p + "expert_count'");
        }
        b.expertDim(gguf.getInt(p + "expert_feed_forward_length"));
        b.gating(RoutingConfig.Gating.SOFTMAX_WEIGHT);
        b.normalizeWeights(false);
        int window = gguf.getInt(p + "attention.sliding_window");
        int period = gguf.getInt(p + "attention.sliding_window_pattern", 2);
        if (gguf.has(p + "rope.freq_base_swa")
                && gguf.getDouble(p + "rope.freq_base_swa") != gguf.getDouble(p + "rope.freq_base", 10000.0)) {
            throw new GgufFormatException(b.file() + ": " + p + "rope.freq_base_swa different from rope.freq_base is not supported");
        }
        try {
            b.attention(new ModelConfig.AttentionLayout(window, period, true, true));
            String scaling = gguf.has(p + "rope.scaling.type") ? gguf.getString(p + "rope.scaling.type") : "none";
            switch (scaling) {
                case "none" -> { }
                case "yarn" -> {
                    if (gguf.getDouble(p + "rope.scaling.yarn_log_multiplier", 0.0) != 0.0) {
                        throw new GgufFormatException(b.file() + ": " + p + "rope.scaling.yarn_log_multiplier is not supported");
                    }
                    b.yarn(ModelConfig.Yarn.of((float) gguf.getDouble(p + "rope.scaling.factor"),
                            gguf.getInt(p + "rope.scaling.original_context_length")));
                }
                default -> throw new GgufFormatException(b.file() + ": " + p + "rope.scaling.type '" + scaling
                        + "' is not supported (none, yarn)");
            }
        } catch (IllegalArgumentException e) {
            throw new GgufFormatException(b.file() + ": " + e.getMessage());
        }
    }

    @Override
    public void layer(Blocks b, int l) {
        b.norm(X, XB, TensorRole.ATTN_NORM, l);
        b.qkv(l);
        b.attention(l);
        b.residual(XB2);
        b.norm(X, XB, TensorRole.ATTN_POST_NORM, l);
        b.moeFfn(l, Blocks.SharedExpert.NONE, Ops.Glu.SWIGLU_OAI);
        b.residual(XB2);
    }
}
