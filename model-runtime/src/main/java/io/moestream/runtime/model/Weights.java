package io.moestream.runtime.model;

import io.moestream.runtime.gguf.GgmlType;
import io.moestream.runtime.gguf.GgufFile;
import io.moestream.runtime.gguf.GgufFormatException;
import io.moestream.runtime.gguf.GgufTensor;

import java.nio.ByteBuffer;
import java.util.Arrays;

/**
 * The tensors of a model, checked against its {@link ModelConfig}. Matrices stay memory-mapped;
 * only the small norm vectors are copied to the heap. Shapes are given as (rows, cols), i.e.
 * (out, in).
 */
final class Weights {

    final WeightMatrix tokenEmbedding; // (vocab, dim)
    final float[] outputNorm;          // (dim)
    final WeightMatrix output;         // (vocab, dim); the embedding when tied
    final Layer[] layers;

    /**
     * One transformer block. Optional tensors are null when absent: the dense FFN in MoE layers,
     * the expert set in dense layers, biases, the QK norms, the shared expert and its gate.
     */
    static final class Layer {
        float[] attnNorm;               // (dim)
        WeightMatrix wqkv;              // (qDim + 2 * kvDim, dim), only with fusedQkv (rows: q, k, v)
        WeightMatrix wq;                // (heads * headDim, dim), without fusedQkv
        WeightMatrix wk;                // (kvHeads * headDim, dim)
        WeightMatrix wv;                // (kvHeads * headDim, dim)
        float[] bq;                     // (heads * headDim), optional (qwen2moe)
        float[] bk;                     // (kvHeads * headDim), optional
        float[] bv;                     // (kvHeads * headDim), optional
        WeightMatrix wo;                // (dim, heads * headDim)
        float[] bo;                     // (dim), optional
        float[] qNorm;                  // (headDim), only with qkNorm
        float[] kNorm;                  // (headDim), only with qkNorm
        float[] ffnNorm;                // (dim)
        WeightMatrix w1;                // gate (ffnDim, dim), dense layers
        WeightMatrix w2;                // down (dim, ffnDim)
        WeightMatrix w3;                // up (ffnDim, dim)
        WeightMatrix router;            // (experts, dim), MoE layers
        float[] selectionBias;          // (experts), optional exp_probs_b: steers the choice only
        WeightMatrix[] expertW1;        // experts x (expertDim, dim)
        WeightMatrix[] expertW2;        // experts x (dim, expertDim)
        WeightMatrix[] expertW3;        // experts x (expertDim, dim)
        WeightMatrix sharedW1;          // (sharedExpertDim, dim), when the model has a shared expert
        WeightMatrix sharedW2;          // (dim, sharedExpertDim)
        WeightMatrix sharedW3;          // (sharedExpertDim, dim)
        float[] sharedGate;             // (dim), only with sharedExpertGate
    }

    private Weights(WeightMatrix tokenEmbedding, float[] outputNorm, WeightMatrix output, Layer[] layers) {
        this.tokenEmbedding = tokenEmbedding;
        this.outputNorm = outputNorm;
        this.output = output;
        this.layers = layers;
    }

    /** Loads the running layers; trailing NextN blocks are not touched (llama.cpp skips them too). */
    static Weights from(GgufFile f, ModelConfig c) throws GgufFormatException {
        int dim = c.dim();
        WeightMatrix embd = matrix(f, "token_embd.weight", c.vocabSize(), dim);
        GgufTensor out = f.tensorOrNull("output.weight");
        WeightMatrix output = out == null ? embd : matrix(f, "output.weight", c.vocabSize(), dim);
        Layer[] layers = new Layer[c.layers()];
        for (int i = 0; i < layers.length; i++) {
            String b = "blk." + i + ".";
            Layer l = new Layer();
            l.attnNorm = vector(f, b + "attn_norm.weight", dim);
            if (c.fusedQkv()) {
                l.wqkv = matrix(f, b + "attn_qkv.weight", c.qDim() + 2 * c.kvDim(), dim);
            } else {
                l.wq = matrix(f, b + "attn_q.weight", c.qDim(), dim);
                l.wk = matrix(f, b + "attn_k.weight", c.kvDim(), dim);
                l.wv = matrix(f, b + "attn_v.weight", c.kvDim(), dim);
            }
            l.bq = optionalVector(f, b + "attn_q.bias", c.qDim());
            l.bk = optionalVector(f, b + "attn_k.bias", c.kvDim());
            l.bv = optionalVector(f, b + "attn_v.bias", c.kvDim());
            l.wo = matrix(f, b + "attn_output.weight", dim, c.qDim());
            l.bo = optionalVector(f, b + "attn_output.bias", dim);
            if (c.qkNorm()) {
                l.qNorm = vector(f, b + "attn_q_norm.weight", c.headDim());
                l.kNorm = vector(f, b + "attn_k_norm.weight", c.headDim());
            }
            l.ffnNorm = vector(f, b + "ffn_norm.weight", dim);
            if (c.isMoeLayer(i)) {
                l.router = matrix(f, b + "ffn_gate_inp.weight", c.experts(), dim);
                l.selectionBias = optionalVector(f, b + "exp_probs_b.bias", c.experts());
                l.expertW1 = experts(f, b + "ffn_gate_exps.weight", c.expertDim(), dim, c.experts());
                l.expertW2 = experts(f, b + "ffn_down_exps.weight", dim, c.expertDim(), c.experts());
                l.expertW3 = experts(f, b + "ffn_up_exps.weight", c.expertDim(), dim, c.experts());
                if (c.sharedExpertDim() > 0) {
                    l.sharedW1 = matrix(f, b + "ffn_gate_shexp.weight", c.sharedExpertDim(), dim);
                    l.sharedW2 = matrix(f, b + "ffn_down_shexp.weight", dim, c.sharedExpertDim());
                    l.sharedW3 = matrix(f, b + "ffn_up_shexp.weight", c.sharedExpertDim(), dim);
                }
                if (c.sharedExpertGate()) {
                    l.sharedGate = vector(f, b + "ffn_gate_inp_shexp.weight", dim);
                }
            } else {
                l.w1 = matrix(f, b + "ffn_gate.weight", c.ffnDim(), dim);
                l.w2 = matrix(f, b + "ffn_down.weight", dim, c.ffnDim());
                l.w3 = matrix(f, b + "ffn_up.weight", c.ffnDim(), dim);
            }
            layers[i] = l;
        }
        return new Weights(embd, vector(f, "output_norm.weight", dim), output, layers);
    }

    private static WeightMatrix matrix(GgufFile f, String name, int rows, int cols) throws GgufFormatException {
        GgufTensor t = f.tensor(name);
        expectShape(t, cols, rows);
        return WeightMatrix.of(t);
    }

    private static WeightMatrix[] experts(GgufFile f, String name, int rows, int cols, int n) throws GgufFormatException {
        GgufTensor t = f.tensor(name);
        expectShape(t, cols, rows, n);
        return WeightMatrix.experts(t);
    }

    private static float[] optionalVector(GgufFile f, String name, int n) throws GgufFormatException {
        return f.tensorOrNull(name) == null ? null : vector(f, name, n);
    }

    private static float[] vector(GgufFile f, String name, int n) throws GgufFormatException {
        GgufTensor t = f.tensor(name);
        expectShape(t, n);
        if (t.type() != GgmlType.F32) {
            throw new GgufFormatException("tensor '" + name + "' has type " + t.type() + "; 1-D weights (norms, biases, gates) must be F32");
        }
        float[] v = new float[n];
        ByteBuffer b = t.bytes();
        for (int i = 0; i < n; i++) {
            v[i] = b.getFloat(4 * i);
        }
        return v;
    }

    private static void expectShape(GgufTensor t, long... ne) throws GgufFormatException {
        if (!Arrays.equals(t.ne(), ne)) {
            throw new GgufFormatException("tensor '" + t.name() + "' has shape " + t.shape() + ", expected "
                    + Arrays.toString(ne) + " from the model metadata");
        }
    }
}
