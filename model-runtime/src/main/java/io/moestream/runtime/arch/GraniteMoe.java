package io.moestream.runtime.arch;

import static io.moestream.runtime.graph.Act.X;
import static io.moestream.runtime.graph.Act.XB;
import static io.moestream.runtime.graph.Act.XB2;

import io.moestream.runtime.gguf.GgufFile;
import io.moestream.runtime.gguf.GgufFormatException;
import io.moestream.runtime.graph.Blocks;
import io.moestream.runtime.graph.TensorRole;
import io.moestream.runtime.model.ModelConfig;

/**
 * {@code granitemoe} (Granite MoE): the llama layer (NORM RoPE, softmax top-k renormalised) with
 * granite's four multipliers: {@code embedding_scale} on the embeddings, {@code residual_scale} on
 * each sub-layer's output, {@code attention.scale} instead of 1/sqrt(head dim) (those three optional,
 * 0 or absent = off) and the required {@code logit_scale} the logits are divided by;
 * {@code feed_forward_length} is the expert width, an optional shared expert
 * ({@code expert_shared_feed_forward_length}) is added ungated.
 */
final class GraniteMoe implements Architecture {

    @Override
    public String name() {
        return "granitemoe";
    }

    @Override
    public void configure(GgufFile gguf, ModelConfig.Builder b) throws GgufFormatException {
        String p = b.prefix();
        if (b.experts() == 0) {
            throw new GgufFormatException(b.file() + ": missing required key '" + p + "expert_count'");
        }
        if (!gguf.getBoolean(p + "rope.scaling.finetuned", true)) {
            throw new GgufFormatException(b.file() + ": " + p + "rope.scaling.finetuned false (granite without RoPE) is not supported");
        }
        b.ropeType(ModelConfig.RopeType.NORM);
        b.expertDim(b.ffnDim());
        b.sharedExpertDim(gguf.getInt(p + "expert_shared_feed_forward_length", 0));
        try {
            b.scales(new ModelConfig.Scales(orOne(gguf, p + "embedding_scale"), orOne(gguf, p + "residual_scale"),
                    (float) gguf.getDouble(p + "attention.scale", 0.0), (float) gguf.getDouble(p + "logit_scale")));
        } catch (IllegalArgumentException e) {
            throw new GgufFormatException(b.file() + ": " + e.getMessage());
        }
    }

    /** An optional multiplier: absent or 0 means none. */
    private static float orOne(GgufFile gguf, String key) throws GgufFormatException {
        float v = (float) gguf.getDouble(key, 0.0);
        return v == 0f ? 1f : v;
    }

    @Override
    public void layer(Blocks b, int l) {
        b.norm(X, XB, TensorRole.ATTN_NORM, l);
        b.qkv(l);
        b.attention(l);
        b.residual(XB2);
        b.norm(X, XB, TensorRole.FFN_NORM, l);
        b.moeFfn(l, b.config().sharedExpertDim() > 0 ? Blocks.SharedExpert.PLAIN : Blocks.SharedExpert.NONE);
        b.residual(XB2);
    }
}
