package io.moestream.runtime.arch;

import static io.moestream.runtime.graph.Act.X;
import static io.moestream.runtime.graph.Act.XB;
import static io.moestream.runtime.graph.Act.XB2;

import io.moestream.runtime.gguf.GgufFile;
import io.moestream.runtime.gguf.GgufFormatException;
import io.moestream.runtime.graph.Blocks;
import io.moestream.runtime.graph.TensorRole;
import io.moestream.runtime.model.ModelConfig;

/** {@code llama}: dense, or Mixtral-style MoE; adjacent-pair RoPE. */
final class Llama implements Architecture {

    @Override
    public String name() {
        return "llama";
    }

    @Override
    public void configure(GgufFile gguf, ModelConfig.Builder b) throws GgufFormatException {
        b.ropeType(ModelConfig.RopeType.NORM);
        if (b.experts() > 0) {
            b.expertDim(gguf.getInt(b.prefix() + "expert_feed_forward_length", b.ffnDim()));
        }
    }

    @Override
    public void layer(Blocks b, int l) {
        b.norm(X, XB, TensorRole.ATTN_NORM, l);
        b.qkv(l);
        b.attention(l);
        b.residual(XB2);
        b.norm(X, XB, TensorRole.FFN_NORM, l);
        if (b.config().isMoeLayer(l)) {
            b.moeFfn(l, Blocks.SharedExpert.NONE);
        } else {
            b.denseFfn(l);
        }
        b.residual(XB2);
    }
}
