package io.moestream.runtime.graph;

import static io.moestream.runtime.graph.Act.HB;
import static io.moestream.runtime.graph.Act.HB2;
import static io.moestream.runtime.graph.Act.K;
import static io.moestream.runtime.graph.Act.Q;
import static io.moestream.runtime.graph.Act.QA;
import static io.moestream.runtime.graph.Act.QB;
import static io.moestream.runtime.graph.Act.VO;
import static io.moestream.runtime.graph.Act.SHARED;
import static io.moestream.runtime.graph.Act.V;
import static io.moestream.runtime.graph.Act.X;
import static io.moestream.runtime.graph.Act.XB;
import static io.moestream.runtime.graph.Act.XB2;

import io.moestream.runtime.model.ModelConfig;

/**
 * The building blocks architectures are wired from (llama.cpp's {@code build_norm},
 * {@code build_attn}, {@code build_ffn}, {@code build_moe_ffn}), written once over {@link Ops}.
 * Sub-layers read XB and write XB2; the residual stream is X.
 */
public final class Blocks {

    /** Whether and how an MoE layer adds its shared expert. */
    public enum SharedExpert {
        NONE,
        /** Added as is. */
        PLAIN,
        /** Scaled per token by sigmoid({@link TensorRole#FFN_GATE_INP_SHEXP} . x) first. */
        GATED
    }

    private final ModelConfig c;
    private final Ops ops;

    public Blocks(ModelConfig c, Ops ops) {
        this.c = c;
        this.ops = ops;
    }

    public ModelConfig config() {
        return c;
    }

    /** out = RMSNorm(in) * weight. */
    public void norm(Act in, Act out, TensorRole weight, int l) {
        ops.norm(in, out, weight, l);
    }

    /** X = the token embeddings, times the embedding scale. */
    public void embed() {
        ops.embed();
        if (c.scales().embedding() != 1f) {
            ops.scale(X, c.scales().embedding());
        }
    }

    /** X += d times the residual scale (d is scaled in place). */
    public void residual(Act d) {
        if (c.scales().residual() != 1f) {
            ops.scale(d, c.scales().residual());
        }
        ops.add(X, d);
    }

    /** The output norm and head, the logits divided by the logit scale. */
    public void logits() {
        ops.logits(1f / c.scales().logit());
    }

    /** Q, K and V from XB (fused or not), plus their biases where the layer has them. */
    public void qkv(int l) {
        ops.qkv(XB, l);
        ops.addBias(Q, TensorRole.ATTN_Q_BIAS, l);
        ops.addBias(K, TensorRole.ATTN_K_BIAS, l);
        ops.addBias(V, TensorRole.ATTN_V_BIAS, l);
    }

    /** RMSNorm of each query and key head, or of the whole q and k projections, as the config's QK norm says. */
    public void qkNorm(int l) {
        if (c.qkNorm() == ModelConfig.QkNorm.WHOLE) {
            ops.headNorm(Q, 1, c.qDim(), TensorRole.ATTN_Q_NORM, l);
            ops.headNorm(K, 1, c.kvDim(), TensorRole.ATTN_K_NORM, l);
        } else {
            ops.headNorm(Q, c.heads(), c.headDim(), TensorRole.ATTN_Q_NORM, l);
            ops.headNorm(K, c.kvHeads(), c.headDim(), TensorRole.ATTN_K_NORM, l);
        }
    }

    /** RoPE on Q and K, the KV cache and attention over it, the output projection (plus its bias): XB2. */
    public void attention(int l) {
        ops.rope(Q, c.heads(), c.headDim(), 0);
        ops.rope(K, c.kvHeads(), c.headDim(), 0);
        ops.attention(l);
        ops.matmul(TensorRole.ATTN_OUT, l, Act.ATT, XB2);
        ops.addBias(XB2, TensorRole.ATTN_OUT_BIAS, l);
    }

    /**
     * Multi-head latent attention in the absorbed form ({@link ModelConfig.Mla}, llama.cpp's
     * deepseek2 MLA branch): the query latent and its norm, the queries, the latent c and k_pe,
     * RoPE on q_pe and k_pe, the norm of c, each head's q_nope absorbed by {@code attn_k_b} next to its
     * q_pe, K = [c ‖ k_pe] (one head; the cache's latent rows serve as V too), attention, each head's values {@code attn_v_b} times its
     * latent result, the output projection: XB2.
     */
    public void mlaAttention(int l) {
        ModelConfig.Mla m = c.mla();
        int heads = c.heads();
        int row = c.headDim();
        ops.matmul(TensorRole.ATTN_Q_A, l, XB, QA);
        ops.headNorm(QA, 1, m.qLoraRank(), TensorRole.ATTN_Q_A_NORM, l);
        ops.matmul(TensorRole.ATTN_Q_B, l, QA, QB);
        ops.matmul(TensorRole.ATTN_KV_A_MQA, l, XB, K);
        ops.rope(QB, heads, m.qHead(), m.qkNope());
        ops.rope(K, 1, row, m.kvLoraRank());
        ops.headNorm(K, 1, m.kvLoraRank(), TensorRole.ATTN_KV_A_NORM, l);
        ops.headMatmul(TensorRole.ATTN_K_B, l, QB, m.qHead(), Q, row, false);
        ops.copyHeads(QB, m.qHead(), m.qkNope(), Q, row, m.kvLoraRank(), m.qkRope(), heads);
        ops.attention(l);
        ops.headMatmul(TensorRole.ATTN_V_B, l, Act.ATT, row, VO, m.vHead(), true);
        ops.matmul(TensorRole.ATTN_OUT, l, VO, XB2);
    }

    /** XB2 = down(silu(gate XB) * up XB). */
    public void denseFfn(int l) {
        ops.matmul(TensorRole.FFN_GATE, HB, TensorRole.FFN_UP, HB2, l, XB);
        ops.swiglu(HB, HB2, c.ffnDim());
        ops.matmul(TensorRole.FFN_DOWN, l, HB, XB2);
    }

    /**
     * Mixture of experts (route, dispatch, experts, combine, with every routing variant of
     * {@link io.moestream.runtime.moe.RoutingConfig}): XB2, plus the shared expert as {@code shared} says.
     */
    public void moeFfn(int l, SharedExpert shared) {
        moeFfn(l, shared, Ops.Glu.SWIGLU);
    }

    /** {@link #moeFfn(int, SharedExpert)} with the experts' activation {@code glu}. */
    public void moeFfn(int l, SharedExpert shared, Ops.Glu glu) {
        ops.route(l);
        ops.experts(l, shared != SharedExpert.NONE, glu);
        if (shared == SharedExpert.GATED) {
            ops.addGated(XB2, SHARED, TensorRole.FFN_GATE_INP_SHEXP, l);
        } else if (shared == SharedExpert.PLAIN) {
            ops.add(XB2, SHARED);
        }
    }
}
