package io.moestream.runtime.model;

import io.moestream.runtime.gguf.GgufFile;
import io.moestream.runtime.gguf.GgufFormatException;
import io.moestream.runtime.moe.RoutingConfig;

/**
 * Hyper-parameters of a decoder-only transformer, read from GGUF metadata. Per-architecture
 * differences are values here (rope type, QK norm, fused QKV, shared expert, routing), not code
 * paths in the forward pass; {@link #from} holds the per-architecture rules.
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
 * @param qkNorm             whether q and k are RMS-normalised per head before RoPE
 * @param fusedQkv           whether q, k, v come from one {@code attn_qkv} matrix (rows: q, then k, then v)
 * @param leadingDenseLayers MoE models: the first layers that use a dense FFN instead
 * @param nextnLayers        trailing NextN/MTP blocks in the file, loaded by nobody and skipped
 * @param sharedExpertDim    width of the always-on shared expert, 0 = none
 * @param sharedExpertGate   whether the shared expert is scaled by sigmoid({@code ffn_gate_inp_shexp} . x)
 * @param routing            expert routing, null for a dense model
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
        boolean qkNorm,
        boolean fusedQkv,
        int leadingDenseLayers,
        int nextnLayers,
        int sharedExpertDim,
        boolean sharedExpertGate,
        RoutingConfig routing) {

    /** How RoPE pairs the dimensions of a head. */
    public enum RopeType {
        /** llama.cpp NORM: adjacent pairs (x[2i], x[2i+1]). */
        NORM,
        /** llama.cpp NEOX: pairs (x[i], x[i + d/2]), d = rotated dimensions. */
        NEOX
    }

    /** The architectures this runtime runs; {@link #from} reads each one's keys. */
    enum Architecture {
        LLAMA("llama"),
        QWEN3MOE("qwen3moe"),
        QWEN2MOE("qwen2moe"),
        BAILINGMOE2("bailingmoe2");

        final String ggufName;

        Architecture(String ggufName) {
            this.ggufName = ggufName;
        }

        static Architecture of(String name, String file) throws GgufFormatException {
            for (Architecture a : values()) {
                if (a.ggufName.equals(name)) {
                    return a;
                }
            }
            throw new GgufFormatException(file + ": unsupported architecture '" + name
                    + "' (supported: llama, qwen3moe, qwen2moe, bailingmoe2)");
        }
    }

    public ModelConfig {
        if (dim <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || headDim <= 0 || vocabSize <= 0 || contextLength <= 0) {
            throw new IllegalArgumentException("model dimensions must be positive (embedding_length " + dim + ", layers "
                    + layers + ", head_count " + heads + ", head_count_kv " + kvHeads + ", head dim " + headDim + ", vocab "
                    + vocabSize + ", context_length " + contextLength + ")");
        }
        if (heads % kvHeads != 0) {
            throw new IllegalArgumentException("head_count " + heads + " is not a multiple of head_count_kv " + kvHeads);
        }
        if (ropeDims > headDim || ropeDims <= 0 || ropeDims % 2 != 0) {
            throw new IllegalArgumentException("rope.dimension_count " + ropeDims + " must be even and in 2..head dim " + headDim);
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
     * Reads the configuration with the rules of the file's architecture; names the missing key or
     * the unsupported architecture. Group-limited routing is read for every architecture
     * ({@code expert_group_count} &gt; 1), as llama.cpp does.
     */
    public static ModelConfig from(GgufFile gguf) throws GgufFormatException {
        String file = gguf.path().getFileName().toString();
        String archName = gguf.getString("general.architecture");
        Architecture arch = Architecture.of(archName, file);
        String p = archName + ".";
        int dim = gguf.getInt(p + "embedding_length");
        int blocks = gguf.getInt(p + "block_count");
        int heads = gguf.getInt(p + "attention.head_count");
        int kvHeads = gguf.getInt(p + "attention.head_count_kv", heads);
        int headDim = gguf.getInt(p + "attention.key_length", heads > 0 ? dim / heads : 0);
        int ffn = gguf.getInt(p + "feed_forward_length", 0);
        int experts = gguf.getInt(p + "expert_count", 0);
        int used = experts == 0 ? 0 : gguf.getInt(p + "expert_used_count");
        int vocab = gguf.has(p + "vocab_size") ? gguf.getInt(p + "vocab_size")
                : gguf.getStringArray("tokenizer.ggml.tokens").size();
        int groups = gguf.getInt(p + "expert_group_count", 0);
        int groupsUsed = gguf.getInt(p + "expert_group_used_count", 0);

        // per-architecture rules (llama.cpp llama_model::load_hparams / load_tensors)
        RopeType rope = RopeType.NEOX;
        boolean qkNorm = false;
        boolean fusedQkv = false;
        int leadingDense = 0;
        int nextn = 0;
        int expertDim = 0;
        int sharedDim = 0;
        boolean sharedGate = false;
        RoutingConfig.Gating gating = RoutingConfig.Gating.SOFTMAX;
        boolean normalize = true;
        float scale = 1f;
        switch (arch) {
            case LLAMA -> {
                rope = RopeType.NORM;
                expertDim = experts == 0 ? 0 : gguf.getInt(p + "expert_feed_forward_length", ffn);
            }
            case QWEN3MOE -> {
                qkNorm = true;
                expertDim = experts == 0 ? 0 : gguf.getInt(p + "expert_feed_forward_length", used > 0 ? ffn / used : 0);
            }
            case QWEN2MOE -> {
                normalize = false;
                expertDim = experts == 0 ? 0 : gguf.getInt(p + "expert_feed_forward_length", used > 0 ? ffn / used : 0);
                sharedDim = experts == 0 ? 0 : gguf.getInt(p + "expert_shared_feed_forward_length", ffn);
                sharedGate = true;
            }
            case BAILINGMOE2 -> {
                qkNorm = true;
                fusedQkv = true;
                leadingDense = gguf.getInt(p + "leading_dense_block_count");
                nextn = gguf.getInt(p + "nextn_predict_layers", 0);
                expertDim = gguf.getInt(p + "expert_feed_forward_length");
                sharedDim = gguf.getInt(p + "expert_shared_feed_forward_length", expertDim) * gguf.getInt(p + "expert_shared_count");
                try {
                    gating = RoutingConfig.Gating.ofCode(gguf.getInt(p + "expert_gating_func"));
                } catch (IllegalArgumentException e) {
                    throw new GgufFormatException(file + ": " + e.getMessage());
                }
                normalize = gguf.getBoolean(p + "expert_weights_norm", false);
                scale = (float) gguf.getDouble(p + "expert_weights_scale");
                if (experts == 0) {
                    throw new GgufFormatException(file + ": missing required key '" + p + "expert_count'");
                }
            }
        }
        if (nextn < 0 || nextn >= blocks) {
            throw new GgufFormatException(file + ": " + p + "nextn_predict_layers " + nextn + " must be in 0.." + (blocks - 1));
        }
        try {
            // llama.cpp skips the scale when it is 0 or 1
            RoutingConfig routing = experts == 0 ? null
                    : new RoutingConfig(gating, experts, used, normalize, scale == 0f ? 1f : scale, groups, groupsUsed);
            return new ModelConfig(
                    archName,
                    gguf.getInt(p + "context_length"),
                    dim,
                    blocks - nextn,
                    heads,
                    kvHeads,
                    headDim,
                    ffn,
                    expertDim,
                    vocab,
                    (float) gguf.getDouble(p + "rope.freq_base", 10000.0),
                    gguf.getInt(p + "rope.dimension_count", headDim),
                    rope,
                    (float) gguf.getDouble(p + "attention.layer_norm_rms_epsilon"),
                    qkNorm,
                    fusedQkv,
                    leadingDense,
                    nextn,
                    sharedDim,
                    sharedGate,
                    routing);
        } catch (IllegalArgumentException e) {
            throw new GgufFormatException(file + ": " + e.getMessage());
        }
    }
}
