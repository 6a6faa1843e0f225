package io.moestream.runtime.kv;

import io.moestream.runtime.gguf.GgmlType;
import io.moestream.runtime.gguf.GgufFile;
import io.moestream.runtime.gguf.GgufFormatException;
import io.moestream.runtime.gguf.GgufTensor;
import io.moestream.runtime.model.Model;
import io.moestream.runtime.model.ModelConfig;
import io.moestream.runtime.model.WeightMatrix;

import java.nio.ByteBuffer;
import java.util.Arrays;

/**
 * A reference forward pass over a {@link PagedKvCache}, built only from public APIs
 * ({@link Model#gguf()}, {@link WeightMatrix#of}), so the compressed cache can be evaluated end to end
 * before {@code Engine} calls it. The math is {@code Engine.forwardOne}'s, step for step (embedding,
 * RMSNorm, q/k/v, QK-norm, RoPE as ggml computes the angles, attention, output projection, dense
 * SwiGLU or Mixtral MoE, output norm and head); with an F32 cache its logits equal the Engine's
 * (tested). Attention is {@link CompressedAttention}. One position at a time, like the Engine.
 *
 * <p>Not thread-safe (activation buffers).
 */
public final class KvForward {

    private final Model model;
    private final ModelConfig c;
    private final CompressedAttention attention;
    private final WeightMatrix embd;
    private final WeightMatrix output;
    private final float[] outputNorm;
    private final L[] layers;

    private final float[] x;
    private final float[] xb;
    private final float[] xb2;
    private final float[] q;
    private final float[] k;
    private final float[] v;
    private final float[] attOut;
    private final float[] hb;
    private final float[] hb2;
    private final float[] moeOut;
    private final float[] routerLogits;
    private final float[] logits;
    private final float[] ropeCos;
    private final float[] ropeSin;

    private static final class L {
        float[] attnNorm;
        float[] ffnNorm;
        float[] qNorm;
        float[] kNorm;
        WeightMatrix wq;
        WeightMatrix wk;
        WeightMatrix wv;
        WeightMatrix wo;
        WeightMatrix w1;
        WeightMatrix w2;
        WeightMatrix w3;
        WeightMatrix router;
        WeightMatrix[] e1;
        WeightMatrix[] e2;
        WeightMatrix[] e3;
    }

    public KvForward(Model model) throws GgufFormatException {
        this.model = model;
        this.c = model.config();
        GgufFile f = model.gguf();
        embd = WeightMatrix.of(f.tensor("token_embd.weight"));
        GgufTensor out = f.tensorOrNull("output.weight");
        output = out == null ? embd : WeightMatrix.of(out);
        outputNorm = vector(f, "output_norm.weight");
        layers = new L[c.layers()];
        for (int i = 0; i < layers.length; i++) {
            String b = "blk." + i + ".";
            L l = new L();
            l.attnNorm = vector(f, b + "attn_norm.weight");
            l.ffnNorm = vector(f, b + "ffn_norm.weight");
            l.wq = WeightMatrix.of(f.tensor(b + "attn_q.weight"));
            l.wk = WeightMatrix.of(f.tensor(b + "attn_k.weight"));
            l.wv = WeightMatrix.of(f.tensor(b + "attn_v.weight"));
            l.wo = WeightMatrix.of(f.tensor(b + "attn_output.weight"));
            if (c.qkNorm()) {
                l.qNorm = vector(f, b + "attn_q_norm.weight");
                l.kNorm = vector(f, b + "attn_k_norm.weight");
            }
            if (c.isMoe()) {
                l.router = WeightMatrix.of(f.tensor(b + "ffn_gate_inp.weight"));
                l.e1 = WeightMatrix.experts(f.tensor(b + "ffn_gate_exps.weight"));
                l.e2 = WeightMatrix.experts(f.tensor(b + "ffn_down_exps.weight"));
                l.e3 = WeightMatrix.experts(f.tensor(b + "ffn_up_exps.weight"));
            } else {
                l.w1 = WeightMatrix.of(f.tensor(b + "ffn_gate.weight"));
                l.w2 = WeightMatrix.of(f.tensor(b + "ffn_down.weight"));
                l.w3 = WeightMatrix.of(f.tensor(b + "ffn_up.weight"));
            }
            layers[i] = l;
        }
        attention = CompressedAttention.of(c);
        int ffn = Math.max(c.ffnDim(), c.expertDim());
        x = new float[c.dim()];
        xb = new float[c.dim()];
        xb2 = new float[c.dim()];
        q = new float[c.qDim()];
        k = new float[c.kvDim()];
        v = new float[c.kvDim()];
        attOut = new float[c.qDim()];
        hb = new float[ffn];
        hb2 = new float[ffn];
        moeOut = new float[c.dim()];
        routerLogits = new float[Math.max(1, c.experts())];
        logits = new float[c.vocabSize()];
        ropeCos = new float[c.ropeDims() / 2];
        ropeSin = new float[c.ropeDims() / 2];
    }

    private static float[] vector(GgufFile f, String name) throws GgufFormatException {
        GgufTensor t = f.tensor(name);
        if (t.type() != GgmlType.F32) {
            throw new GgufFormatException("tensor '" + name + "' has type " + t.type() + "; norm weights must be F32");
        }
        float[] out = new float[(int) t.elementCount()];
        ByteBuffer b = t.bytes();
        for (int i = 0; i < out.length; i++) {
            out[i] = b.getFloat(4 * i);
        }
        return out;
    }

    public Model model() {
        return model;
    }

    public CompressedAttention attention() {
        return attention;
    }

    /** A new empty cache for this model. */
    public PagedKvCache newCache(KvCodec codec, int blockTokens) {
        return new PagedKvCache(KvShape.of(model), codec, blockTokens);
    }

    /** Appends {@code tokens} to the cache and returns the logits at the last one. */
    public float[] forward(PagedKvCache cache, int[] tokens) {
        return forward(cache, tokens, null);
    }

    /**
     * Appends {@code tokens}; if {@code allLogits != null}, {@code allLogits[i]} receives the logits
     * after token i (rows allocated here). Returns the logits at the last token.
     */
    public float[] forward(PagedKvCache cache, int[] tokens, float[][] allLogits) {
        if (tokens.length == 0) {
            throw new IllegalArgumentException("forward needs at least one token");
        }
        if (cache.length() + tokens.length > c.contextLength()) {
            throw new IllegalArgumentException("forward of " + tokens.length + " tokens after " + cache.length()
                    + " positions exceeds the context length " + c.contextLength());
        }
        for (int i = 0; i < tokens.length; i++) {
            boolean want = allLogits != null || i == tokens.length - 1;
            forwardOne(cache, tokens[i], want);
            if (allLogits != null) {
                allLogits[i] = logits.clone();
            }
        }
        return logits.clone();
    }

    private void forwardOne(PagedKvCache cache, int token, boolean computeLogits) {
        if (token < 0 || token >= c.vocabSize()) {
            throw new IllegalArgumentException("token id " + token + " is outside the vocabulary");
        }
        int pos = cache.length();
        int headDim = c.headDim();
        ropeAngles(pos);
        embd.dequantizeRow(token, x, 0);
        for (int li = 0; li < layers.length; li++) {
            L l = layers[li];
            rmsnorm(xb, x, 0, l.attnNorm, c.dim());
            l.wq.matmul(xb, q);
            l.wk.matmul(xb, k);
            l.wv.matmul(xb, v);
            if (c.qkNorm()) {
                for (int h = 0; h < c.heads(); h++) {
                    rmsnorm(q, q, h * headDim, l.qNorm, headDim);
                }
                for (int h = 0; h < c.kvHeads(); h++) {
                    rmsnorm(k, k, h * headDim, l.kNorm, headDim);
                }
            }
            rope(q, c.heads());
            rope(k, c.kvHeads());
            cache.write(li, pos, k, 0, v, 0);
            attention.attendAll(cache, li, q, pos, attOut);
            l.wo.matmul(attOut, xb2);
            add(x, xb2);
            rmsnorm(xb, x, 0, l.ffnNorm, c.dim());
            if (c.isMoe()) {
                moe(l, xb, xb2);
            } else {
                swiglu(l.w1, l.w3, l.w2, xb, xb2);
            }
            add(x, xb2);
        }
        cache.commit(pos + 1);
        if (computeLogits) {
            rmsnorm(xb, x, 0, outputNorm, c.dim());
            output.matmul(xb, logits);
        }
    }

    private void moe(L layer, float[] in, float[] out) {
        layer.router.matmul(in, routerLogits);
        softmax(routerLogits, c.experts());
        int[] chosen = new int[c.expertsUsed()];
        float chosenSum = 0;
        boolean[] taken = new boolean[c.experts()];
        for (int j = 0; j < chosen.length; j++) {
            int best = -1;
            for (int e = 0; e < c.experts(); e++) {
                if (!taken[e] && (best < 0 || routerLogits[e] > routerLogits[best])) {
                    best = e;
                }
            }
            taken[best] = true;
            chosen[j] = best;
            chosenSum += routerLogits[best];
        }
        Arrays.fill(out, 0, c.dim(), 0f);
        for (int e : chosen) {
            float weight = routerLogits[e] / chosenSum;
            swiglu(layer.e1[e], layer.e3[e], layer.e2[e], in, moeOut);
            for (int i = 0; i < c.dim(); i++) {
                out[i] += weight * moeOut[i];
            }
        }
    }

    private void swiglu(WeightMatrix w1, WeightMatrix w3, WeightMatrix w2, float[] in, float[] out) {
        w1.matmul(in, hb);
        w3.matmul(in, hb2);
        int n = w1.rows();
        for (int i = 0; i < n; i++) {
            float g = hb[i];
            hb[i] = g / (1f + (float) Math.exp(-g)) * hb2[i];
        }
        w2.matmul(hb, out);
    }

    private void ropeAngles(int pos) {
        float thetaScale = (float) Math.pow(c.ropeBase(), -2.0f / c.ropeDims());
        float theta = pos;
        for (int i = 0; i < ropeCos.length; i++) {
            ropeCos[i] = (float) Math.cos(theta);
            ropeSin[i] = (float) Math.sin(theta);
            theta *= thetaScale;
        }
    }

    private void rope(float[] vec, int nHeads) {
        int headDim = c.headDim();
        int half = c.ropeDims() / 2;
        for (int h = 0; h < nHeads; h++) {
            int base = h * headDim;
            for (int i = 0; i < half; i++) {
                int a;
                int b;
                if (c.ropeType() == ModelConfig.RopeType.NORM) {
                    a = base + 2 * i;
                    b = a + 1;
                } else {
                    a = base + i;
                    b = base + i + half;
                }
                float x0 = vec[a];
                float x1 = vec[b];
                vec[a] = x0 * ropeCos[i] - x1 * ropeSin[i];
                vec[b] = x0 * ropeSin[i] + x1 * ropeCos[i];
            }
        }
    }

    private void rmsnorm(float[] out, float[] in, int off, float[] weight, int n) {
        float ss = 0;
        for (int i = 0; i < n; i++) {
            ss += in[off + i] * in[off + i];
        }
        float inv = (float) (1.0 / Math.sqrt(ss / n + c.rmsEps()));
        for (int i = 0; i < n; i++) {
            out[off + i] = in[off + i] * inv * weight[i];
        }
    }

    private static void softmax(float[] v, int n) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            max = Math.max(max, v[i]);
        }
        float sum = 0;
        for (int i = 0; i < n; i++) {
            v[i] = (float) Math.exp(v[i] - max);
            sum += v[i];
        }
        for (int i = 0; i < n; i++) {
            v[i] /= sum;
        }
    }

    private static void add(float[] acc, float[] d) {
        for (int i = 0; i < acc.length; i++) {
            acc[i] += d[i];
        }
    }
}
