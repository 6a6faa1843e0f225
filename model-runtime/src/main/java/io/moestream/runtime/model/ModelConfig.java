package io.moestream.runtime.model;

import io.moestream.runtime.arch.Architecture;
import io.moestream.runtime.gguf.GgufFile;
import io.moestream.runtime.gguf.GgufFormatException;
import io.moestream.runtime.kernel.Libm;
import io.moestream.runtime.moe.RoutingConfig;

/**
 * Hyper-parameters of a decoder-only transformer, read from GGUF metadata. Per-architecture
 * differences are values here (rope type, QK norm, fused QKV, shared expert, routing), read by the
 * file's {@link Architecture}, which also wires the layers from them.
 *
 * @param architecture       {@code general.architecture}
 * @param contextLength      most positions a sequence may hold
 * @param dim                embedding width (n_embd)
 * @param layers             transformer blocks that run ({@code block_count} minus NextN blocks)
 * @param heads              query heads
 * @param kvHeads            key/value heads (GQA: heads % kvHeads == 0)
 * @param headDim            width of one head
 * @param ffnDim             dense FFN width (dense models and leading dense layers)
 * @param expertDim          width of one routed expert, 0 = dense
 * @param vocabSize          logits per position
 * @param ropeBase           RoPE frequency base
 * @param ropeDims           rotated dimensions per head, from the start of the head (partial RoPE when &lt; headDim)
 * @param ropeType           how dimensions are paired for rotation
 * @param rmsEps             RMSNorm epsilon
 * @param qkNorm             whether and how q and k are RMS-normalised before RoPE
 * @param fusedQkv           whether q, k, v come from one {@code attn_qkv} matrix (rows: q, then k, then v)
 * @param leadingDenseLayers MoE models: the first layers that use a dense FFN instead
 * @param nextnLayers        trailing NextN/MTP blocks in the file, loaded by nobody and skipped
 * @param sharedExpertDim    width of the always-on shared expert, 0 = none
 * @param sharedExpertGate   whether the shared expert is scaled by sigmoid({@code ffn_gate_inp_shexp} . x)
 * @param routing            expert routing, null for a dense model
 * @param scales             the embedding, residual, attention and logit scales ({@link Scales#NONE}: none)
 * @param attention          sliding-window layers, attention sinks, the pre-FFN norm's name ({@link AttentionLayout#PLAIN}: none)
 * @param yarn               YaRN RoPE scaling, null for plain RoPE
 * @param mla                multi-head latent attention (deepseek2), null for q/k/v projections
 */
public record ModelConfig(
        String architecture,
        int contextLength,
        int dim,
        int layers,
        int heads,
        int kvHeads,
        int headDim,
        int ffnDim,
        int expertDim,
        int vocabSize,
        float ropeBase,
        int ropeDims,
        RopeType ropeType,
        float rmsEps,
        QkNorm qkNorm,
        boolean fusedQkv,
        int leadingDenseLayers,
        int nextnLayers,
        int sharedExpertDim,
        boolean sharedExpertGate,
        RoutingConfig routing,
        Scales scales,
        AttentionLayout attention,
        Yarn yarn,
        Mla mla) {

    /** How RoPE pairs the dimensions of a head. */
    public enum RopeType {
        /** llama.cpp NORM: adjacent pairs (x[2i], x[2i+1]). */
        NORM,
        /** llama.cpp NEOX: pairs (x[i], x[i + d/2]), d = rotated dimensions. */
        NEOX
    }

    /** Whether and over what q and k are RMS-normalised (with {@code attn_q_norm} / {@code attn_k_norm}). */
    public enum QkNorm {
        NONE,
        /** Each head alone; the norm weights are one head wide. */
        PER_HEAD,
        /** The whole projection (all heads) as one vector; the norm weights are as wide as it. */
        WHOLE
    }

    /**
     * Multipliers some architectures put on the residual stream (granite): the embeddings are
     * multiplied by {@code embedding}, each sub-layer's output by {@code residual} before it is added,
     * attention scores by {@code attention} (0: 1/sqrt(head dim)), and the logits divided by
     * {@code logit}.
     */
    public record Scales(float embedding, float residual, float attention, float logit) {
        public static final Scales NONE = new Scales(1f, 1f, 0f, 1f);

        public Scales {
            if (!(embedding > 0 && residual > 0 && attention >= 0 && logit > 0) || !Float.isFinite(embedding + residual + attention + logit)) {
                throw new IllegalArgumentException("scales must be finite and positive (embedding_scale " + embedding + ", residual_scale "
                        + residual + ", attention.scale " + attention + ", logit_scale " + logit + ")");
            }
        }
    }

    /**
     * How attention and the norm around it differ from the plain layer (gpt-oss): layer l is a
     * sliding-window layer when {@code window > 0} and {@code l % period < period - 1} (llama.cpp's
     * {@code set_swa_pattern}): a query at position p sees keys p - window + 1 .. p. With
     * {@code sinks} each layer has one learned logit per head ({@code attn_sinks}) that takes part in
     * the softmax and adds no value. With {@code postAttentionNorm} the pre-FFN norm is
     * {@code post_attention_norm} instead of {@code ffn_norm}.
     */
    public record AttentionLayout(int window, int period, boolean sinks, boolean postAttentionNorm) {
        public static final AttentionLayout PLAIN = new AttentionLayout(0, 0, false, false);

        public AttentionLayout {
            if (window < 0 || (window > 0 && period < 1)) {
                throw new IllegalArgumentException("sliding_window " + window + " must be >= 0, with sliding_window_pattern "
                        + period + " >= 1");
            }
        }
    }

    /**
     * YaRN RoPE scaling as ggml's {@code rope_yarn}: {@code freqScale} = 1 / {@code rope.scaling.factor},
     * the original context, the ramp's beta_fast / beta_slow, {@code extFactor} (1 for YaRN) and
     * {@code attnFactor} (llama.cpp's {@code yarn_attn_factor}, which cos and sin are multiplied by with
     * the interpolation's own magnitude correction).
     */
    public record Yarn(float freqScale, int origContext, float betaFast, float betaSlow, float extFactor, float attnFactor) {

        /**
         * llama.cpp's YaRN defaults for {@code rope.scaling.factor} {@code factor} (no log
         * multiplier): beta_fast 32, beta_slow 1, extFactor 1, and its yarn_attn_factor
         * {@code m * (1 / m)}, {@code m = 1 + 0.1 ln factor} in float (GCC's fma).
         */
        public static Yarn of(float scalingFactor, int origContext) {
            float freqScale = 1.0f / scalingFactor;
            float factor = 1.0f / freqScale;
            float m = factor <= 1f ? 1f : Math.fma(0.1f, Libm.logf(factor), 1.0f);
            float attnFactor = m * (1.0f / Math.fma(0.1f, Libm.logf(factor), 1.0f));
            return new Yarn(freqScale, origContext, 32f, 1f, 1f, attnFactor);
        }

        public Yarn {
            if (!(freqScale > 0 && freqScale <= 1) || origContext <= 0) {
                throw new IllegalArgumentException("YaRN needs rope.scaling.factor >= 1 and rope.scaling.original_context_length > 0, got "
                        + (1 / freqScale) + " and " + origContext);
            }
        }
    }

    /**
     * Multi-head latent attention in its absorbed form (deepseek2): q = W_qb rms(W_qa x), per head
     * {@code qkNope} values then {@code qkRope} RoPE'd ones; the cached key of a position is
     * [rms(c) ({@code kvLoraRank}) ‖ RoPE'd k_pe ({@code qkRope})] from {@code attn_kv_a_mqa}, one
     * head shared by all query heads, and its value the same row (the latent c is what is read);
     * the query of head h is [attn_k_b[h] q_nope ‖ q_pe], and its output attn_v_b[h] times the first
     * {@code kvLoraRank} values of the attention result ({@code vHead} values per head). So
     * {@code headDim} = kvLoraRank + qkRope and {@code kvHeads} = 1.
     */
    public record Mla(int qLoraRank, int kvLoraRank, int qkNope, int qkRope, int vHead) {
        public Mla {
            if (qLoraRank <= 0 || kvLoraRank <= 0 || qkNope <= 0 || qkRope <= 0 || vHead <= 0) {
                throw new IllegalArgumentException("MLA sizes must be positive: q_lora_rank " + qLoraRank + ", kv_lora_rank "
                        + kvLoraRank + ", key_length_mla - rope " + qkNope + ", rope.dimension_count " + qkRope
                        + ", value_length_mla " + vHead);
            }
        }

        /** Width of one query head before absorption (nope then rope). */
        public int qHead() {
            return qkNope + qkRope;
        }
    }

    public ModelConfig {
        if (mla != null && (headDim != mla.kvLoraRank() + mla.qkRope() || kvHeads != 1 || ropeDims != mla.qkRope())) {
            throw new IllegalArgumentException("MLA needs attention.key_length = kv_lora_rank + rope (" + (mla.kvLoraRank() + mla.qkRope())
                    + ", got " + headDim + "), head_count_kv 1 (got " + kvHeads + ") and rope.dimension_count = the rope part ("
                    + mla.qkRope() + ", got " + ropeDims + ")");
        }
        if (scales == null) {
            scales = Scales.NONE;
        }
        if (attention == null) {
            attention = AttentionLayout.PLAIN;
        }
        if (qkNorm == null) {
            qkNorm = QkNorm.NONE;
        }
        if (dim <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || headDim <= 0 || vocabSize <= 0 || contextLength <= 0) {
            throw new IllegalArgumentException("model dimensions must be positive (embedding_length " + dim + ", layers "
                    + layers + ", head_count " + heads + ", head_count_kv " + kvHeads
                    + ", head dim (attention.key_length, else embedding_length / head_count) " + headDim + ", vocab_size " + vocabSize
                    + ", context_length " + contextLength + ")");
        }
        if (heads % kvHeads != 0) {
            throw new IllegalArgumentException("head_count " + heads + " is not a multiple of head_count_kv " + kvHeads);
        }
        if (!(ropeBase > 0) || Float.isInfinite(ropeBase)) { // NaN fails the first test
            throw new IllegalArgumentException("rope.freq_base " + ropeBase + " must be a positive finite number");
        }
        if (!(rmsEps >= 0) || Float.isInfinite(rmsEps)) {
            throw new IllegalArgumentException("attention.layer_norm_rms_epsilon " + rmsEps + " must be a finite number >= 0");
        }
        if (attention.window() > contextLength) {
            throw new IllegalArgumentException("attention.sliding_window " + attention.window() + " exceeds context_length "
                    + contextLength);
        }
        if (ropeDims > headDim || ropeDims <= 0 || ropeDims % 2 != 0) {
            throw new IllegalArgumentException("rope.dimension_count " + ropeDims + " must be even and in 2..head dim " + headDim
                    + " (attention.key_length, else embedding_length / head_count)");
        }
        if (fusedQkv && heads * headDim != dim) {
            throw new IllegalArgumentException("a fused attn_qkv needs head_count * head dim == embedding_length, got "
                    + heads + " * " + headDim + " != " + dim);
        }
        if (routing != null && expertDim <= 0) {
            throw new IllegalArgumentException("expert_feed_forward_length must be > 0, got " + expertDim);
        }
        if (routing == null && (expertDim != 0 || sharedExpertDim != 0)) {
            throw new IllegalArgumentException("a dense model has no experts");
        }
        if (leadingDenseLayers < 0 || leadingDenseLayers > layers || (leadingDenseLayers > 0 && ffnDim <= 0)) {
            throw new IllegalArgumentException("leading_dense_block_count " + leadingDenseLayers + " must be in 0.." + layers
                    + " with feed_forward_length > 0");
        }
        if ((routing == null || leadingDenseLayers > 0) && ffnDim <= 0) {
            throw new IllegalArgumentException("feed_forward_length must be > 0 for dense layers, got " + ffnDim);
        }
    }

    /** The attention score scale: {@code attention.scale}, else 1/sqrt(head dim) (llama.cpp's {@code 1.0f/sqrtf(n_embd_head)}). */
    public float attentionScale() {
        return scales.attention() != 0f ? scales.attention() : 1f / (float) Math.sqrt(headDim);
    }

    /** Whether layer {@code l} attends over a sliding window ({@link AttentionLayout}). */
    public boolean isSlidingLayer(int l) {
        return attention.window() > 0 && l % attention.period() < attention.period() - 1;
    }

    /** Width of the attention output that {@code attn_output} reads: all heads' values. */
    public int attnOutDim() {
        return mla != null ? heads * mla.vHead() : qDim();
    }

    /** Width of all query heads together. */
    public int qDim() {
        return heads * headDim;
    }

    /** Width of the keys (and values) of one position. */
    public int kvDim() {
        return kvHeads * headDim;
    }

    public boolean isMoe() {
        return routing != null;
    }

    /** Experts per MoE layer, 0 for a dense model. */
    public int experts() {
        return routing == null ? 0 : routing.experts();
    }

    /** Experts chosen per token, 0 for a dense model. */
    public int expertsUsed() {
        return routing == null ? 0 : routing.topK();
    }

    /** Whether layer {@code l} routes over experts (else it is a dense SwiGLU). */
    public boolean isMoeLayer(int l) {
        return routing != null && l >= leadingDenseLayers;
    }

    /**
     * Reads the configuration: the keys every architecture has, then the file's
     * {@link Architecture}'s own; names the missing key or the unsupported architecture.
     * Group-limited routing is read for every architecture ({@code expert_group_count} &gt; 1), as
     * llama.cpp does.
     */
    public static ModelConfig from(GgufFile gguf) throws GgufFormatException {
        String file = gguf.path().getFileName().toString();
        String archName = gguf.getString("general.architecture");
        Architecture arch;
        try {
            arch = Architecture.of(archName);
        } catch (IllegalArgumentException e) {
            throw new GgufFormatException(file + ": " + e.getMessage());
        }
        String p = archName + ".";
        int heads = gguf.getInt(p + "attention.head_count");
        int dim = gguf.getInt(p + "embedding_length");
        int experts = gguf.getInt(p + "expert_count", 0);
        Builder b = new Builder(archName, file);
        b.dim = dim;
        b.blocks = gguf.getInt(p + "block_count");
        b.heads = heads;
        b.kvHeads = gguf.getInt(p + "attention.head_count_kv", heads);
        b.headDim = gguf.getInt(p + "attention.key_length", heads > 0 ? dim / heads : 0);
        b.ffnDim = gguf.getInt(p + "feed_forward_length", 0);
        b.experts = experts;
        b.expertsUsed = experts == 0 ? 0 : gguf.getInt(p + "expert_used_count");
        b.vocabSize = gguf.has(p + "vocab_size") ? gguf.getInt(p + "vocab_size")
                : gguf.getStringArray("tokenizer.ggml.tokens").size();
        b.groups = gguf.getInt(p + "expert_group_count", 0);
        b.groupsUsed = gguf.getInt(p + "expert_group_used_count", 0);
        arch.configure(gguf, b);
        b.contextLength = gguf.getInt(p + "context_length");
        b.ropeBase = (float) gguf.getDouble(p + "rope.freq_base", 10000.0);
        b.ropeDims = gguf.getInt(p + "rope.dimension_count", b.headDim);
        b.rmsEps = (float) gguf.getDouble(p + "attention.layer_norm_rms_epsilon");
        return b.build();
    }

    /**
     * The values {@link #from} reads: the common keys, then an {@link Architecture}'s own
     * ({@link Architecture#configure} sets those through the setters).
     */
    public static final class Builder {
        private final String architecture;
        private final String file;
        private int contextLength;
        private int dim;
        private int blocks;
        private int heads;
        private int kvHeads;
        private int headDim;
        private int ffnDim;
        private int experts;
        private int expertsUsed;
        private int vocabSize;
        private int groups;
        private int groupsUsed;
        private float ropeBase;
        private int ropeDims;
        private float rmsEps;
        private RopeType ropeType = RopeType.NEOX;
        private QkNorm qkNorm = QkNorm.NONE;
        private Scales scales = Scales.NONE;
        private AttentionLayout attention = AttentionLayout.PLAIN;
        private Yarn yarn;
        private Mla mla;
        private boolean fusedQkv;
        private int leadingDenseLayers;
        private int nextnLayers;
        private int expertDim;
        private int sharedExpertDim;
        private boolean sharedExpertGate;
        private RoutingConfig.Gating gating = RoutingConfig.Gating.SOFTMAX;
        private boolean normalizeWeights = true;
        private float weightsScale = 1f;

        private Builder(String architecture, String file) {
            this.architecture = architecture;
            this.file = file;
        }

        /** The key prefix, {@code <architecture>.}. */
        public String prefix() {
            return architecture + ".";
        }

        /** The file name, for messages. */
        public String file() {
            return file;
        }

        public int ffnDim() {
            return ffnDim;
        }

        public int experts() {
            return experts;
        }

        public int expertsUsed() {
            return expertsUsed;
        }

        public void ropeType(RopeType v) {
            ropeType = v;
        }

        public void qkNorm(QkNorm v) {
            qkNorm = v;
        }

        public void scales(Scales v) {
            scales = v;
        }

        public void attention(AttentionLayout v) {
            attention = v;
        }

        public void yarn(Yarn v) {
            yarn = v;
        }

        public void mla(Mla v) {
            mla = v;
        }

        public void fusedQkv(boolean v) {
            fusedQkv = v;
        }

        public void leadingDenseLayers(int v) {
            leadingDenseLayers = v;
        }

        public void nextnLayers(int v) {
            nextnLayers = v;
        }

        public void expertDim(int v) {
            expertDim = v;
        }

        public void sharedExpertDim(int v) {
            sharedExpertDim = v;
        }

        public void sharedExpertGate(boolean v) {
            sharedExpertGate = v;
        }

        public void gating(RoutingConfig.Gating v) {
            gating = v;
        }

        public void normalizeWeights(boolean v) {
            normalizeWeights = v;
        }

        /** {@code expert_weights_scale}; llama.cpp skips a scale of 0 or 1. */
        public void weightsScale(float v) {
            weightsScale = v == 0f ? 1f : v;
        }

        ModelConfig build() throws GgufFormatException {
            String p = prefix();
            if (blocks <= 0) {
                throw new GgufFormatException(file + ": " + p + "block_count " + blocks + " must be positive");
            }
            if (nextnLayers < 0 || nextnLayers >= blocks) {
                throw new GgufFormatException(file + ": " + p + "nextn_predict_layers " + nextnLayers + " must be in 0.." + (blocks - 1));
            }
            try {
                RoutingConfig routing = experts == 0 ? null
                        : new RoutingConfig(gating, experts, expertsUsed, normalizeWeights, weightsScale, groups, groupsUsed);
                return new ModelConfig(architecture, contextLength, dim, blocks - nextnLayers, heads, kvHeads, headDim, ffnDim,
                        expertDim, vocabSize, ropeBase, ropeDims, ropeType, rmsEps, qkNorm, fusedQkv, leadingDenseLayers,
                        nextnLayers, sharedExpertDim, sharedExpertGate, routing, scales, attention, yarn, mla);
            } catch (IllegalArgumentException e) {
                throw new GgufFormatException(file + ": " + e.getMessage());
            }
        }
    }
}
