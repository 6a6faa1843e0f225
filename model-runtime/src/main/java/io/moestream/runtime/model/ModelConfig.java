package io.moestream.runtime.model;

import io.moestream.runtime.gguf.GgufFile;
import io.moestream.runtime.gguf.GgufFormatException;

/**
 * Hyper-parameters of a decoder-only transformer, read from GGUF metadata. Per-architecture
 * differences are values here (rope type, QK norm, key names), not code paths in the forward pass.
 *
 * @param architecture     {@code general.architecture}
 * @param contextLength    most positions a sequence may hold
 * @param dim              embedding width (n_embd)
 * @param layers           transformer blocks
 * @param heads            query heads
 * @param kvHeads          key/value heads (GQA: heads % kvHeads == 0)
 * @param headDim          width of one head
 * @param ffnDim           dense FFN width (unused by MoE layers)
 * @param experts          experts per MoE layer, 0 = dense
 * @param expertsUsed      experts chosen per token
 * @param expertDim        width of one expert
 * @param vocabSize        logits per position
 * @param ropeBase         RoPE frequency base
 * @param ropeDims         rotated dimensions per head (from the start of the head)
 * @param ropeType         how dimensions are paired for rotation
 * @param rmsEps           RMSNorm epsilon
 * @param qkNorm           whether q and k are RMS-normalised per head before RoPE
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
        int experts,
        int expertsUsed,
        int expertDim,
        int vocabSize,
        float ropeBase,
        int ropeDims,
        RopeType ropeType,
        float rmsEps,
        boolean qkNorm) {

    /** How RoPE pairs the dimensions of a head. */
    public enum RopeType {
        /** llama.cpp NORM: adjacent pairs (x[2i], x[2i+1]). */
        NORM,
        /** llama.cpp NEOX: pairs (x[i], x[i + d/2]). */
        NEOX
    }

    /** The architectures this runtime runs, and what distinguishes them. */
    enum Architecture {
        LLAMA("llama", RopeType.NORM, false),
        QWEN3MOE("qwen3moe", RopeType.NEOX, true);

        final String ggufName;
        final RopeType ropeType;
        final boolean qkNorm;

        Architecture(String ggufName, RopeType ropeType, boolean qkNorm) {
            this.ggufName = ggufName;
            this.ropeType = ropeType;
            this.qkNorm = qkNorm;
        }

        static Architecture of(String name, String file) throws GgufFormatException {
            for (Architecture a : values()) {
                if (a.ggufName.equals(name)) {
                    return a;
                }
            }
            throw new GgufFormatException(file + ": unsupported architecture '" + name + "' (supported: llama, qwen3moe)");
        }
    }

    public ModelConfig {
        if (dim <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || headDim <= 0 || vocabSize <= 0 || contextLength <= 0) {
            throw new IllegalArgumentException("model dimensions must be positive (embedding_length " + dim + ", block_count "
                    + layers + ", head_count " + heads + ", head_count_kv " + kvHeads + ", head dim " + headDim + ", vocab "
                    + vocabSize + ", context_length " + contextLength + ")");
        }
        if (heads % kvHeads != 0) {
            throw new IllegalArgumentException("head_count " + heads + " is not a multiple of head_count_kv " + kvHeads);
        }
        if (ropeDims > headDim || ropeDims % 2 != 0) {
            throw new IllegalArgumentException("rope.dimension_count " + ropeDims + " must be even and <= head dim " + headDim);
        }
        if (experts > 0 && (expertsUsed <= 0 || expertsUsed > experts || expertDim <= 0)) {
            throw new IllegalArgumentException("expert_used_count " + expertsUsed + " must be in 1.." + experts);
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
        return experts > 0;
    }

    /** Reads the configuration; names the missing key or the unsupported architecture. */
    public static ModelConfig from(GgufFile gguf) throws GgufFormatException {
        String file = gguf.path().getFileName().toString();
        String archName = gguf.getString("general.architecture");
        Architecture arch = Architecture.of(archName, file);
        String p = archName + ".";
        int dim = gguf.getInt(p + "embedding_length");
        int heads = gguf.getInt(p + "attention.head_count");
        int kvHeads = gguf.getInt(p + "attention.head_count_kv", heads);
        int headDim = gguf.getInt(p + "attention.key_length", heads > 0 ? dim / heads : 0);
        int ffn = gguf.getInt(p + "feed_forward_length", 0);
        int experts = gguf.getInt(p + "expert_count", 0);
        int used = gguf.getInt(p + "expert_used_count", 0);
        int expertDim = experts == 0 ? 0
                : gguf.getInt(p + "expert_feed_forward_length", arch == Architecture.LLAMA ? ffn : used > 0 ? ffn / used : 0);
        int vocab = gguf.has(p + "vocab_size") ? gguf.getInt(p + "vocab_size")
                : gguf.getStringArray("tokenizer.ggml.tokens").size();
        try {
            return new ModelConfig(
                    archName,
                    gguf.getInt(p + "context_length"),
                    dim,
                    gguf.getInt(p + "block_count"),
                    heads,
                    kvHeads,
                    headDim,
                    ffn,
                    experts,
                    used,
                    expertDim,
                    vocab,
                    (float) gguf.getDouble(p + "rope.freq_base", 10000.0),
                    gguf.getInt(p + "rope.dimension_count", headDim),
                    arch.ropeType,
                    (float) gguf.getDouble(p + "attention.layer_norm_rms_epsilon"),
                    arch.qkNorm);
        } catch (IllegalArgumentException e) {
            throw new GgufFormatException(file + ": " + e.getMessage());
        }
    }
}
