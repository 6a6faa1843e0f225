package io.moestream.runtime.backend;

import io.moestream.runtime.gguf.GgufFile;
import io.moestream.runtime.gguf.GgufFormatException;
import io.moestream.runtime.gguf.GgufTensor;
import io.moestream.runtime.model.ModelConfig;

/**
 * The tensors of a {@code llama}-family model uploaded to one backend, with llama2.c names and
 * (rows, cols) = (out, in) shapes. Upload keys are {@code <file path>#<tensor name>}, so every
 * engine on a device shares one copy.
 */
public final class ResidentWeights {

    final WeightHandle tokenEmbedding; // (vocab, dim)
    final WeightHandle outputNorm;     // (1, dim)
    final WeightHandle output;         // (vocab, dim); the embedding when tied
    final Layer[] layers;

    /** One block; dense FFN fields are null in MoE layers and vice versa. */
    static final class Layer {
        WeightHandle attnNorm;   // (1, dim)
        WeightHandle wq;         // (heads * headDim, dim)
        WeightHandle wk;         // (kvHeads * headDim, dim)
        WeightHandle wv;         // (kvHeads * headDim, dim)
        WeightHandle wo;         // (dim, heads * headDim)
        WeightHandle qNorm;      // (1, headDim), only with qkNorm
        WeightHandle kNorm;      // (1, headDim), only with qkNorm
        WeightHandle ffnNorm;    // (1, dim)
        WeightHandle w1;         // gate (ffnDim, dim)
        WeightHandle w2;         // down (dim, ffnDim)
        WeightHandle w3;         // up (ffnDim, dim)
        WeightHandle router;     // (experts, dim)
        WeightHandle expertW1;   // experts x (expertDim, dim)
        WeightHandle expertW2;   // experts x (dim, expertDim)
        WeightHandle expertW3;   // experts x (expertDim, dim)
    }

    private ResidentWeights(WeightHandle tokenEmbedding, WeightHandle outputNorm, WeightHandle output, Layer[] layers) {
        this.tokenEmbedding = tokenEmbedding;
        this.outputNorm = outputNorm;
        this.output = output;
        this.layers = layers;
    }

    /** Uploads every tensor the forward pass reads (shapes were checked when the model loaded). */
    public static ResidentWeights upload(Backend backend, GgufFile f, ModelConfig c) throws GgufFormatException {
        String file = f.path().toAbsolutePath().toString();
        Uploader up = name -> {
            GgufTensor t = f.tensor(name);
            return backend.upload(file + "#" + name, t);
        };
        WeightHandle embd = up.get("token_embd.weight");
        WeightHandle output = f.tensorOrNull("output.weight") == null ? embd : up.get("output.weight");
        Layer[] layers = new Layer[c.layers()];
        for (int i = 0; i < layers.length; i++) {
            String b = "blk." + i + ".";
            Layer l = new Layer();
            l.attnNorm = up.get(b + "attn_norm.weight");
            l.wq = up.get(b + "attn_q.weight");
            l.wk = up.get(b + "attn_k.weight");
            l.wv = up.get(b + "attn_v.weight");
            l.wo = up.get(b + "attn_output.weight");
            if (c.qkNorm()) {
                l.qNorm = up.get(b + "attn_q_norm.weight");
                l.kNorm = up.get(b + "attn_k_norm.weight");
            }
            l.ffnNorm = up.get(b + "ffn_norm.weight");
            if (c.isMoe()) {
                l.router = up.get(b + "ffn_gate_inp.weight");
                l.expertW1 = up.get(b + "ffn_gate_exps.weight");
                l.expertW2 = up.get(b + "ffn_down_exps.weight");
                l.expertW3 = up.get(b + "ffn_up_exps.weight");
            } else {
                l.w1 = up.get(b + "ffn_gate.weight");
                l.w2 = up.get(b + "ffn_down.weight");
                l.w3 = up.get(b + "ffn_up.weight");
            }
            layers[i] = l;
        }
        return new ResidentWeights(embd, up.get("output_norm.weight"), output, layers);
    }

    @FunctionalInterface
    private interface Uploader {
        WeightHandle get(String name) throws GgufFormatException;
    }
}
