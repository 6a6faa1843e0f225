package io.moestream.runtime.arch;

import static io.moestream.runtime.graph.Act.X;
import static io.moestream.runtime.graph.Act.XB;
import static io.moestream.runtime.graph.Act.XB2;

import io.moestream.runtime.gguf.GgufFile;
import io.moestream.runtime.gguf.GgufFormatException;
import io.moestream.runtime.graph.Blocks;
import io.moestream.runtime.graph.TensorRole;
import io.moestream.runtime.model.ModelConfig;

/** {@code qwen3moe}: QK norm before RoPE, MoE in every layer, NEOX RoPE. */
final class Qwen3Moe implements Architecture {

    @Override
    public String name() {
        return "qwen3moe";
    }

    @Override
    public void configure(GgufFile gguf, ModelConfig.Builder b) throws GgufFormatException {
        b.qkNorm(ModelConfig.QkNorm.PER_HEAD);
        if (b.experts() > 0) {
            b.expertDim(gguf.getInt(b.prefix() + "expert_feed_forward_length", b.expertsUsed() > 0 ? b.ffnDim() / b.expertsUsed() : 0));
        }
    }

    @Override
    public void layer(Blocks b, int l) {
        b.norm(X, XB, TensorRole.ATTN_NORM, l);
        b.qkv(l);
        b.qkNorm(l);
        b.attention(l);
        b.residual(XB2);
        b.norm(X, XB, TensorRole.FFN_NORM, l);
        b.moeFfn(l, Blocks.SharedExpert.NONE);
        b.residual(XB2);
    }
}
