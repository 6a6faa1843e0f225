package io.moestream.runtime.arch;

import static io.moestream.runtime.graph.Act.X;
import static io.moestream.runtime.graph.Act.XB;
import static io.moestream.runtime.graph.Act.XB2;

import io.moestream.runtime.gguf.GgufFile;
import io.moestream.runtime.gguf.GgufFormatException;
import io.moestream.runtime.graph.Blocks;
import io.moestream.runtime.graph.TensorRole;
import io.moestream.runtime.model.ModelConfig;
import io.moestream.runtime.moe.RoutingConfig;

/**
 * {@code deepseek2} in DeepSeek-V3 form: multi-head latent attention ({@link ModelConfig.Mla}, taken
 * as llama.cpp does when {@code attention.key_length_mla} and {@code value_length_mla} are set; the
 * cached row is the latent plus k_pe), NORM RoPE on the rope part, scores times
 * 1/sqrt({@code key_length_mla}), leading dense layers, routed experts with the file's gating
 * (missing: softmax), selection bias, group limit, weight normalisation and scale, plus ungated
 * shared experts. Not supported (a clear error): the legacy fused {@code attn_kv_b} form, "lite"
 * files without a query LoRA, RoPE scaling.
 */
final class DeepSeek2 implements Architecture {

    @Override
    public String name() {
        return "deepseek2";
    }

    @Override
    public void configure(GgufFile gguf, ModelConfig.Builder b) throws GgufFormatException {
        String p = b.prefix();
        if (b.experts() == 0) {
            throw new GgufFormatException(b.file() + ": missing required key '" + p + "expert_count'");
        }
        int kMla = gguf.getInt(p + "attention.key_length_mla", 0);
        int vMla = gguf.getInt(p + "attention.value_length_mla", 0);
        if (kMla == 0 || vMla == 0) {
            throw new GgufFormatException(b.file() + ": deepseek2 without attention.key_length_mla / value_length_mla (the fused"
                    + " attn_kv_b form) is not supported");
        }
        if (!gguf.has(p + "attention.q_lora_rank")) {
            throw new GgufFormatException(b.file() + ": deepseek2 without attention.q_lora_rank (a lite model) is not supported");
        }
        if (gguf.has(p + "rope.scaling.type") && !"none".equals(gguf.getString(p + "rope.scaling.type"))) {
            throw new GgufFormatException(b.file() + ": " + p + "rope.scaling.type '" + gguf.getString(p + "rope.scaling.type")
                    + "' is not supported for deepseek2");
        }
        int rope = gguf.getInt(p + "rope.dimension_count");
        b.ropeType(ModelConfig.RopeType.NORM);
        b.leadingDenseLayers(gguf.getInt(p + "leading_dense_block_count", 0));
        int expertDim = gguf.getInt(p + "expert_feed_forward_length");
        b.expertDim(expertDim);
        b.sharedExpertDim(expertDim * gguf.getInt(p + "expert_shared_count"));
        b.normalizeWeights(gguf.getBoolean(p + "expert_weights_norm", false));
        b.weightsScale((float) gguf.getDouble(p + "expert_weights_scale", 0.0));
        try {
            b.gating(RoutingConfig.Gating.ofCode(gguf.getInt(p + "expert_gating_func", 1)));
            b.mla(new ModelConfig.Mla(gguf.getInt(p + "attention.q_lora_rank"), gguf.getInt(p + "attention.kv_lora_rank"),
                    kMla - rope, rope, vMla));
            b.scales(new ModelConfig.Scales(1f, 1f, 1.0f / (float) Math.sqrt(kMla), 1f));
        } catch (IllegalArgumentException e) {
            throw new GgufFormatException(b.file() + ": " + e.getMessage());
        }
    }

    @Override
    public void layer(Blocks b, int l) {
        b.norm(X, XB, TensorRole.ATTN_NORM, l);
        b.mlaAttention(l);
        b.residual(XB2);
        b.norm(X, XB, TensorRole.FFN_NORM, l);
        if (b.config().isMoeLayer(l)) {
            b.moeFfn(l, b.config().sharedExpertDim() > 0 ? Blocks.SharedExpert.PLAIN : Blocks.SharedExpert.NONE);
        } else {
            b.denseFfn(l);
        }
        b.residual(XB2);
    }
}
