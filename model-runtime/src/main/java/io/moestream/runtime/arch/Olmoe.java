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
 * {@code olmoe} (OLMoE): QK norm over the whole q and k projections (one mean square for all heads),
 * NEOX RoPE, softmax routing whose top-k weights are not renormalised; {@code feed_forward_length}
 * is the expert width.
 */
final class Olmoe implements Architecture {

    @Override
    public String name() {
        return "olmoe";
    }

    @Override
    public void configure(GgufFile gguf, ModelConfig.Builder b) throws GgufFormatException {
        if (b.experts() == 0) {
            throw new GgufFormatException(b.file() + ": missing required key '" + b.prefix() + "expert_count'");
        }
        b.qkNorm(ModelConfig.QkNorm.WHOLE);
        b.normalizeWeights(false);
        b.expertDim(b.ffnDim());
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
