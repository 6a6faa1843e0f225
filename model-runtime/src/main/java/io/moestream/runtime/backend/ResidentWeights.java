package io.moestream.runtime.backend;

import io.moestream.runtime.gguf.GgufFile;
import io.moestream.runtime.gguf.GgufFormatException;
import io.moestream.runtime.gguf.GgufTensor;
import io.moestream.runtime.model.ModelConfig;

import java.nio.ByteBuffer;

/**
 * The tensors of a model uploaded to one backend, with llama2.c names and (rows, cols) = (out, in)
 * shapes, for every architecture {@link ModelConfig} describes. Upload keys are
 * {@code <file path>#<tensor name>}, so every engine on a device shares one copy. A fused
 * {@code attn_qkv} matrix is uploaded as its three row ranges (q, k, v), which are whole rows of the
 * file's tensor, so the products are the same as the fused one's.
 */
public final class ResidentWeights {

    final WeightHandle tokenEmbedding; // (vocab, dim)
    final WeightHandle outputNorm;     // (1, dim)
    final WeightHandle output;         // (vocab, dim); the embedding when tied
    final Layer[] layers;

    /** One block; optional tensors are null when absent, dense FFN fields are null in MoE layers and vice versa. */
    static final class Layer {
        WeightHandle attnNorm;      // (1, dim)
        WeightHandle wq;            // (heads * headDim, dim); rows 0.. of attn_qkv when fused
        WeightHandle wk;            // (kvHeads * headDim, dim)
        WeightHandle wv;            // (kvHeads * headDim, dim)
        WeightHandle bq;            // (1, heads * headDim), optional (qwen2moe)
        WeightHandle bk;            // (1, kvHeads * headDim), optional
        WeightHandle bv;            // (1, kvHeads * headDim), optional
        WeightHandle wo;            // (dim, heads * headDim)
        WeightHandle bo;            // (1, dim), optional
        WeightHandle qNorm;         // (1, headDim), only with qkNorm
        WeightHandle kNorm;         // (1, headDim), only with qkNorm
        WeightHandle ffnNorm;       // (1, dim)
        WeightHandle w1;            // gate (ffnDim, dim), dense layers
        WeightHandle w2;            // down (dim, ffnDim)
        WeightHandle w3;            // up (ffnDim, dim)
        WeightHandle router;        // (experts, dim), MoE layers
        WeightHandle selectionBias; // (1, experts), optional exp_probs_b: steers the choice only
        WeightHandle expertW1;      // experts x (expertDim, dim)
        WeightHandle expertW2;      // experts x (dim, expertDim)
        WeightHandle expertW3;      // experts x (expertDim, dim)
        WeightHandle sharedW1;      // (sharedExpertDim, dim), when the model has a shared expert
        WeightHandle sharedW2;      // (dim, sharedExpertDim)
        WeightHandle sharedW3;      // (sharedExpertDim, dim)
        WeightHandle sharedGate;    // (1, dim), only with sharedExpertGate
    }

    private ResidentWeights(WeightHandle tokenEmbedding, WeightHandle outputNorm, WeightHandle output, Layer[] layers) {
        this.tokenEmbedding = tokenEmbedding;
        this.outputNorm = outputNorm;
        this.output = output;
        this.layers = layers;
    }

    /** Uploads every tensor the forward pass reads (shapes were checked when the model loaded); NextN blocks are not. */
    public static ResidentWeights upload(Backend backend, GgufFile f, ModelConfig c) throws GgufFormatException {
        String file = f.path().toAbsolutePath().toString();
        Uploader up = name -> backend.upload(file + "#" + name, f.tensor(name));
        Uploader optional = name -> f.tensorOrNull(name) == null ? null : up.get(name);
        WeightHandle embd = up.get("token_embd.weight");
        WeightHandle output = f.tensorOrNull("output.weight") == null ? embd : up.get("output.weight");
        Layer[] layers = new Layer[c.layers()];
        for (int i = 0; i < layers.length; i++) {
            String b = "blk." + i + ".";
            Layer l = new Layer();
            l.attnNorm = up.get(b + "attn_norm.weight");
            if (c.fusedQkv()) {
                GgufTensor qkv = f.tensor(b + "attn_qkv.weight");
                l.wq = backend.upload(file + "#" + qkv.name() + "[q]", rows(qkv, 0, c.qDim()));
                l.wk = backend.upload(file + "#" + qkv.name() + "[k]", rows(qkv, c.qDim(), c.kvDim()));
                l.wv = backend.upload(file + "#" + qkv.name() + "[v]", rows(qkv, c.qDim() + c.kvDim(), c.kvDim()));
            } else {
                l.wq = up.get(b + "attn_q.weight");
                l.wk = up.get(b + "attn_k.weight");
                l.wv = up.get(b + "attn_v.weight");
            }
            l.bq = optional.get(b + "attn_q.bias");
            l.bk = optional.get(b + "attn_k.bias");
            l.bv = optional.get(b + "attn_v.bias");
            l.wo = up.get(b + "attn_output.weight");
            l.bo = optional.get(b + "attn_output.bias");
            if (c.qkNorm()) {
                l.qNorm = up.get(b + "attn_q_norm.weight");
                l.kNorm = up.get(b + "attn_k_norm.weight");
            }
            l.ffnNorm = up.get(b + "ffn_norm.weight");
            if (c.isMoeLayer(i)) {
                l.router = up.get(b + "ffn_gate_inp.weight");
                l.selectionBias = optional.get(b + "exp_probs_b.bias");
                l.expertW1 = up.get(b + "ffn_gate_exps.weight");
                l.expertW2 = up.get(b + "ffn_down_exps.weight");
                l.expertW3 = up.get(b + "ffn_up_exps.weight");
                if (c.sharedExpertDim() > 0) {
                    l.sharedW1 = up.get(b + "ffn_gate_shexp.weight");
                    l.sharedW2 = up.get(b + "ffn_down_shexp.weight");
                    l.sharedW3 = up.get(b + "ffn_up_shexp.weight");
                }
                if (c.sharedExpertGate()) {
                    l.sharedGate = up.get(b + "ffn_gate_inp_shexp.weight");
                }
            } else {
                l.w1 = up.get(b + "ffn_gate.weight");
                l.w2 = up.get(b + "ffn_down.weight");
                l.w3 = up.get(b + "ffn_up.weight");
            }
            layers[i] = l;
        }
        return new ResidentWeights(embd, up.get("output_norm.weight"), output, layers);
    }

    /** Rows {@code first..first+count-1} of a matrix, as a matrix of its own (a view of the mapped bytes). */
    static GgufTensor rows(GgufTensor t, int first, int count) {
        long cols = t.ne()[0];
        long rowBytes = t.type().bytesFor(cols);
        ByteBuffer slice = t.bytes().slice(Math.toIntExact(first * rowBytes), Math.toIntExact(count * rowBytes));
        return new GgufTensor(t.name() + "[" + first + ".." + (first + count - 1) + "]", t.type(), new long[] {cols, count}, slice);
    }

    @FunctionalInterface
    private interface Uploader {
        WeightHandle get(String name) throws GgufFormatException;
    }
}
