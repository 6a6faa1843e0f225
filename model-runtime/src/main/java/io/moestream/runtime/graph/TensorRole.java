package io.moestream.runtime.graph;

import io.moestream.runtime.gguf.GgmlType;
import io.moestream.runtime.gguf.GgufFile;
import io.moestream.runtime.gguf.GgufFormatException;
import io.moestream.runtime.gguf.GgufTensor;
import io.moestream.runtime.model.ModelConfig;

import java.util.Arrays;

/**
 * The one binding of GGUF tensor names to the roles the forward pass reads (llama.cpp's
 * {@code LLM_TENSOR_NAMES}, which every supported architecture shares), with each role's shape
 * (GGUF {@code ne} order: the contiguous dimension first) and when a layer has it. Every backend
 * loads its weights through {@link #bind}; the forward pass names weights by role.
 */
public enum TensorRole {
    TOKEN_EMBD("token_embd.weight", Kind.MATRIX),
    OUTPUT_NORM("output_norm.weight", Kind.VECTOR),
    /** The output head; absent when tied to {@link #TOKEN_EMBD}. */
    OUTPUT("output.weight", Kind.MATRIX),
    ATTN_NORM("blk.%d.attn_norm.weight", Kind.VECTOR),
    /** q, k and v as one matrix (rows: q, then k, then v). */
    ATTN_QKV("blk.%d.attn_qkv.weight", Kind.MATRIX),
    ATTN_Q("blk.%d.attn_q.weight", Kind.MATRIX),
    ATTN_K("blk.%d.attn_k.weight", Kind.MATRIX),
    ATTN_V("blk.%d.attn_v.weight", Kind.MATRIX),
    ATTN_Q_BIAS("blk.%d.attn_q.bias", Kind.VECTOR),
    ATTN_K_BIAS("blk.%d.attn_k.bias", Kind.VECTOR),
    ATTN_V_BIAS("blk.%d.attn_v.bias", Kind.VECTOR),
    /** MLA: the query down-projection, its norm, the up-projection (per head nope then rope). */
    ATTN_Q_A("blk.%d.attn_q_a.weight", Kind.MATRIX),
    ATTN_Q_A_NORM("blk.%d.attn_q_a_norm.weight", Kind.VECTOR),
    ATTN_Q_B("blk.%d.attn_q_b.weight", Kind.MATRIX),
    /** MLA: the latent c (rows 0..kvLoraRank) and the shared k_pe (the rest). */
    ATTN_KV_A_MQA("blk.%d.attn_kv_a_mqa.weight", Kind.MATRIX),
    ATTN_KV_A_NORM("blk.%d.attn_kv_a_norm.weight", Kind.VECTOR),
    /** MLA: per head the [kvLoraRank x qkNope] matrix that absorbs q_nope into the latent space. */
    ATTN_K_B("blk.%d.attn_k_b.weight", Kind.EXPERTS),
    /** MLA: per head the [vHead x kvLoraRank] matrix from the latent to the head's values. */
    ATTN_V_B("blk.%d.attn_v_b.weight", Kind.EXPERTS),
    ATTN_OUT("blk.%d.attn_output.weight", Kind.MATRIX),
    ATTN_OUT_BIAS("blk.%d.attn_output.bias", Kind.VECTOR),
    ATTN_Q_NORM("blk.%d.attn_q_norm.weight", Kind.VECTOR),
    ATTN_K_NORM("blk.%d.attn_k_norm.weight", Kind.VECTOR),
    /** One softmax logit per query head that takes probability mass and adds no value. */
    ATTN_SINKS("blk.%d.attn_sinks.weight", Kind.VECTOR),
    /** The pre-FFN norm of layers that name it so (instead of {@link #FFN_NORM}). */
    ATTN_POST_NORM("blk.%d.post_attention_norm.weight", Kind.VECTOR),
    FFN_NORM("blk.%d.ffn_norm.weight", Kind.VECTOR),
    FFN_GATE("blk.%d.ffn_gate.weight", Kind.MATRIX),
    FFN_UP("blk.%d.ffn_up.weight", Kind.MATRIX),
    FFN_DOWN("blk.%d.ffn_down.weight", Kind.MATRIX),
    /** The router. */
    FFN_GATE_INP("blk.%d.ffn_gate_inp.weight", Kind.MATRIX),
    /** Added to the router logits. */
    FFN_GATE_INP_BIAS("blk.%d.ffn_gate_inp.bias", Kind.VECTOR),
    /** Per-expert selection bias: steers the choice, never the weights. */
    EXP_PROBS_B("blk.%d.exp_probs_b.bias", Kind.VECTOR),
    FFN_GATE_EXPS("blk.%d.ffn_gate_exps.weight", Kind.EXPERTS),
    FFN_UP_EXPS("blk.%d.ffn_up_exps.weight", Kind.EXPERTS),
    FFN_DOWN_EXPS("blk.%d.ffn_down_exps.weight", Kind.EXPERTS),
    /** Per-expert biases, one row per expert (F32). */
    FFN_GATE_EXPS_BIAS("blk.%d.ffn_gate_exps.bias", Kind.VECTOR),
    FFN_UP_EXPS_BIAS("blk.%d.ffn_up_exps.bias", Kind.VECTOR),
    FFN_DOWN_EXPS_BIAS("blk.%d.ffn_down_exps.bias", Kind.VECTOR),
    FFN_GATE_SHEXP("blk.%d.ffn_gate_shexp.weight", Kind.MATRIX),
    FFN_UP_SHEXP("blk.%d.ffn_up_shexp.weight", Kind.MATRIX),
    FFN_DOWN_SHEXP("blk.%d.ffn_down_shexp.weight", Kind.MATRIX),
    /** The shared expert's sigmoid gate (one row). */
    FFN_GATE_INP_SHEXP("blk.%d.ffn_gate_inp_shexp.weight", Kind.VECTOR);

    /** Receives one bound tensor. */
    @FunctionalInterface
    public interface Binder {
        void bind(TensorRole role, int layer, GgufTensor tensor) throws GgufFormatException;
    }

    /** How a role is stored: F32 vectors (norms, biases, gates), matrices, expert stacks. */
    public enum Kind { VECTOR, MATRIX, EXPERTS }

    /** Whether a layer must have, may have or never has a role. */
    public enum Presence { REQUIRED, OPTIONAL, ABSENT }

    private final String pattern;
    private final Kind kind;

    TensorRole(String pattern, Kind kind) {
        this.pattern = pattern;
        this.kind = kind;
    }

    public Kind kind() {
        return kind;
    }

    /** Whether the role is per layer ({@code blk.N.}); the others are read with layer -1. */
    public boolean perLayer() {
        return pattern.startsWith("blk.");
    }

    /** Whether the role belongs to a layer's feed-forward half (router and shared expert included). */
    public boolean ffn() {
        return ordinal() >= FFN_GATE.ordinal();
    }

    /** The GGUF name in {@code layer} ({@code layer} is ignored for the global roles). */
    public String ggufName(int layer) {
        return perLayer() ? String.format(pattern, layer) : pattern;
    }

    /** Whether layer {@code l} (-1 for the global roles) of a model with {@code c} has this role. */
    public Presence presence(ModelConfig c, int l) {
        boolean moe = l >= 0 && c.isMoeLayer(l);
        return switch (this) {
            case TOKEN_EMBD, OUTPUT_NORM, ATTN_NORM, ATTN_OUT -> Presence.REQUIRED;
            case FFN_NORM -> c.attention().postAttentionNorm() ? Presence.ABSENT : Presence.REQUIRED;
            case ATTN_POST_NORM -> c.attention().postAttentionNorm() ? Presence.REQUIRED : Presence.ABSENT;
            case ATTN_SINKS -> c.attention().sinks() ? Presence.REQUIRED : Presence.ABSENT;
            case OUTPUT, ATTN_Q_BIAS, ATTN_K_BIAS, ATTN_V_BIAS, ATTN_OUT_BIAS -> Presence.OPTIONAL;
            case ATTN_QKV -> c.fusedQkv() ? Presence.REQUIRED : Presence.ABSENT;
            case ATTN_Q, ATTN_K, ATTN_V -> c.fusedQkv() || c.mla() != null ? Presence.ABSENT : Presence.REQUIRED;
            case ATTN_Q_A, ATTN_Q_A_NORM, ATTN_Q_B, ATTN_KV_A_MQA, ATTN_KV_A_NORM, ATTN_K_B, ATTN_V_B ->
                    c.mla() != null ? Presence.REQUIRED : Presence.ABSENT;
            case ATTN_Q_NORM, ATTN_K_NORM -> c.qkNorm() != ModelConfig.QkNorm.NONE ? Presence.REQUIRED : Presence.ABSENT;
            case FFN_GATE, FFN_UP, FFN_DOWN -> moe ? Presence.ABSENT : Presence.REQUIRED;
            case FFN_GATE_INP, FFN_GATE_EXPS, FFN_UP_EXPS, FFN_DOWN_EXPS -> moe ? Presence.REQUIRED : Presence.ABSENT;
            case EXP_PROBS_B, FFN_GATE_INP_BIAS, FFN_GATE_EXPS_BIAS, FFN_UP_EXPS_BIAS, FFN_DOWN_EXPS_BIAS ->
                    moe ? Presence.OPTIONAL : Presence.ABSENT;
            case FFN_GATE_SHEXP, FFN_UP_SHEXP, FFN_DOWN_SHEXP -> moe && c.sharedExpertDim() > 0 ? Presence.REQUIRED : Presence.ABSENT;
            case FFN_GATE_INP_SHEXP -> moe && c.sharedExpertGate() ? Presence.REQUIRED : Presence.ABSENT;
        };
    }

    /** The expected {@code ne} (contiguous dimension first) under {@code c}. */
    public long[] shape(ModelConfig c) {
        long dim = c.dim();
        return switch (this) {
            case TOKEN_EMBD, OUTPUT -> new long[] {dim, c.vocabSize()};
            case OUTPUT_NORM, ATTN_NORM, FFN_NORM, ATTN_POST_NORM, ATTN_OUT_BIAS, FFN_GATE_INP_SHEXP -> new long[] {dim};
            case ATTN_SINKS -> new long[] {c.heads()};
            case FFN_GATE_INP_BIAS -> new long[] {c.experts()};
            case FFN_GATE_EXPS_BIAS, FFN_UP_EXPS_BIAS -> new long[] {c.expertDim(), c.experts()};
            case FFN_DOWN_EXPS_BIAS -> new long[] {dim, c.experts()};
            case ATTN_QKV -> new long[] {dim, c.qDim() + 2L * c.kvDim()};
            case ATTN_Q -> new long[] {dim, c.qDim()};
            case ATTN_K, ATTN_V -> new long[] {dim, c.kvDim()};
            case ATTN_Q_BIAS -> new long[] {c.qDim()};
            case ATTN_K_BIAS, ATTN_V_BIAS -> new long[] {c.kvDim()};
            case ATTN_OUT -> new long[] {c.attnOutDim(), dim};
            case ATTN_Q_A -> new long[] {dim, c.mla().qLoraRank()};
            case ATTN_Q_A_NORM -> new long[] {c.mla().qLoraRank()};
            case ATTN_Q_B -> new long[] {c.mla().qLoraRank(), (long) c.heads() * c.mla().qHead()};
            case ATTN_KV_A_MQA -> new long[] {dim, c.mla().kvLoraRank() + c.mla().qkRope()};
            case ATTN_KV_A_NORM -> new long[] {c.mla().kvLoraRank()};
            case ATTN_K_B -> new long[] {c.mla().qkNope(), c.mla().kvLoraRank(), c.heads()};
            case ATTN_V_B -> new long[] {c.mla().kvLoraRank(), c.mla().vHead(), c.heads()};
            case ATTN_Q_NORM -> new long[] {c.qkNorm() == ModelConfig.QkNorm.WHOLE ? c.qDim() : c.headDim()};
            case ATTN_K_NORM -> new long[] {c.qkNorm() == ModelConfig.QkNorm.WHOLE ? c.kvDim() : c.headDim()};
            case FFN_GATE, FFN_UP -> new long[] {dim, c.ffnDim()};
            case FFN_DOWN -> new long[] {c.ffnDim(), dim};
            case FFN_GATE_INP -> new long[] {dim, c.experts()};
            case EXP_PROBS_B -> new long[] {c.experts()};
            case FFN_GATE_EXPS, FFN_UP_EXPS -> new long[] {dim, c.expertDim(), c.experts()};
            case FFN_DOWN_EXPS -> new long[] {c.expertDim(), dim, c.experts()};
            case FFN_GATE_SHEXP, FFN_UP_SHEXP -> new long[] {dim, c.sharedExpertDim()};
            case FFN_DOWN_SHEXP -> new long[] {c.sharedExpertDim(), dim};
        };
    }

    /**
     * Binds every tensor a model with {@code c} has: the global roles (layer -1), then each running
     * layer's (trailing NextN blocks are not touched, as llama.cpp skips them).
     */
    public static void bindAll(GgufFile f, ModelConfig c, Binder binder) throws GgufFormatException {
        for (int l = -1; l < c.layers(); l++) {
            for (TensorRole role : values()) {
                if (role.perLayer() != (l < 0)) {
                    GgufTensor t = role.bind(f, c, l);
                    if (t != null) {
                        binder.bind(role, l, t);
                    }
                }
            }
        }
    }

    /**
     * This role's tensor in layer {@code l} (-1 for the global roles), its shape and (for vectors)
     * type checked; null when the layer does not have it.
     *
     * @throws GgufFormatException when a required tensor is missing or a tensor has the wrong shape or type
     */
    public GgufTensor bind(GgufFile f, ModelConfig c, int l) throws GgufFormatException {
        Presence p = presence(c, l);
        if (p == Presence.ABSENT) {
            return null;
        }
        String name = ggufName(l);
        GgufTensor t = p == Presence.REQUIRED ? f.tensor(name) : f.tensorOrNull(name);
        if (t == null) {
            return null;
        }
        long[] ne = shape(c);
        if (!Arrays.equals(t.ne(), ne)) {
            throw new GgufFormatException("tensor '" + name + "' has shape " + t.shape() + ", expected " + Arrays.toString(ne)
                    + " from the model metadata");
        }
        if (kind == Kind.VECTOR && t.type() != GgmlType.F32) {
            throw new GgufFormatException("tensor '" + name + "' has type " + t.type() + "; 1-D weights (norms, biases, gates) must be F32");
        }
        return t;
    }
}
