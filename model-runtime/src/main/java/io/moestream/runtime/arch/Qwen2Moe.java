package io.moestream.runtime.arch;

import static io.moestream.runtime.graph.Act.X;
import static io.moestream.runtime.graph.Act.XB;
import static io.moestream.runtime.graph.Act.XB2;

import io.moestream.runtime.gguf.GgufFile;
import io.moestream.runtime.gguf.GgufFormatException;
import io.moestream.runtime.graph.Blocks;
import io.moestream.runtime.graph.TensorRole;
import io.moestream.runtime.model.ModelConfig;

/** {@code qwen2moe}: q/k/v biases, softmax routing without renormalising, a sigmoid-gated shared expert. */
final class Qwen2Moe implements Architecture {

    @Override
    public String name() {
        return "qwen2moe";
    }

    @Override
    public void configure(GgufFile gguf, ModelConfig.Builder b) throws GgufFormatException {
        b.normalizeWeights(false);
        b.sharedExpertGate(true);
        if (b.experts() > 0) {
            b.expertDim(gguf.getInt(b.prefix() + "expert_feed_forward_length", b.expertsUsed() > 0 ? b.ffnDim() / b.expertsUsed() : 0));
            int shared = gguf.getInt(b.prefix() + "expert_shared_feed_forward_length", b.ffnDim());
            if (shared <= 0) { // every qwen2moe layer adds its shared expert
                throw new GgufFormatException(b.file() + ": " + b.prefix() + "expert_shared_feed_forward_length " + shared + " must be positive");
            }
            b.sharedExpertDim(shared);
        }
    }

    @Override
    public void layer(Blocks b, int l) {
        b.norm(X, XB, TensorRole.ATTN_NORM, l);
        b.qkv(l);
        b.attention(l);
        b.residual(XB2);
        b.norm(X, XB, TensorRole.FFN_NORM, l);
        b.moeFfn(l, Blocks.SharedExpert.GATED);
        b.residual(XB2);
    }
}
