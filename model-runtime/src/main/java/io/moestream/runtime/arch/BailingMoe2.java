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
 * {@code bailingmoe2} (Ling 2.0): fused QKV, QK norm, leading dense layers, group-limited routing
 * with the file's gating and weight scale, a plain shared expert; trailing NextN blocks are not run.
 */
final class BailingMoe2 implements Architecture {

    @Override
    public String name() {
        return "bailingmoe2";
    }

    @Override
    public void configure(GgufFile gguf, ModelConfig.Builder b) throws GgufFormatException {
        String p = b.prefix();
        if (b.experts() == 0) {
            throw new GgufFormatException(b.file() + ": missing required key '" + p + "expert_count'");
        }
        b.qkNorm(ModelConfig.QkNorm.PER_HEAD);
        b.fusedQkv(true);
        b.leadingDenseLayers(gguf.getInt(p + "leading_dense_block_count"));
        b.nextnLayers(gguf.getInt(p + "nextn_predict_layers", 0));
        int expertDim = gguf.getInt(p + "expert_feed_forward_length");
        b.expertDim(expertDim);
        long shared = (long) gguf.getInt(p + "expert_shared_feed_forward_length", expertDim) * gguf.getInt(p + "expert_shared_count");
        if (shared <= 0 || shared > Integer.MAX_VALUE) { // every MoE layer adds its shared experts
            throw new GgufFormatException(b.file() + ": " + p + "expert_shared_feed_forward_length x " + p + "expert_shared_count = "
                    + shared + " must be positive");
        }
        b.sharedExpertDim((int) shared);
        try {
            b.gating(RoutingConfig.Gating.ofCode(gguf.getInt(p + "expert_gating_func")));
        } catch (IllegalArgumentException e) {
            throw new GgufFormatException(b.file() + ": " + e.getMessage());
        }
        b.normalizeWeights(gguf.getBoolean(p + "expert_weights_norm", false));
        b.weightsScale((float) gguf.getDouble(p + "expert_weights_scale"));
    }

    @Override
    public void layer(Blocks b, int l) {
        b.norm(X, XB, TensorRole.ATTN_NORM, l);
        b.qkv(l);
        b.qkNorm(l);
        b.attention(l);
        b.residual(XB2);
        b.norm(X, XB, TensorRole.FFN_NORM, l);
        if (b.config().isMoeLayer(l)) {
            b.moeFfn(l, Blocks.SharedExpert.PLAIN);
        } else {
            b.denseFfn(l);
        }
        b.residual(XB2);
    }
}
