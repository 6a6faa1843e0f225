package io.moestream.runtime.model;

import io.moestream.runtime.sampler.Sampler;
import io.moestream.runtime.tokenizer.Detokenizer;

import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * Runs the forward pass. Not thread-safe: one engine per thread (per Flink slot); it owns its
 * activation buffers.
 */
public final class Engine {

    private final Model model;
    private final ModelConfig c;
    private final Weights w;

    // activations of the position being computed (llama2.c names)
    private final float[] x;      // (dim) residual stream
    private final float[] xb;     // (dim) normalised input of a sub-layer
    private final float[] xb2;    // (dim) sub-layer output
    private final float[] q;      // (heads * headDim)
    private final float[] k;      // (kvHeads * headDim)
    private final float[] v;      // (kvHeads * headDim)
    private final float[] attOut; // (heads * headDim)
    private final float[] hb;     // (max ffn width) gate activation
    private final float[] hb2;    // (max ffn width) up activation
    private final float[] moeOut; // (dim)
    private final float[] routerLogits; // (experts)
    private final float[] logits; // (vocab)
    private float[] att;          // (positions) attention scores of one head
    private final float[] ropeCos; // (ropeDims / 2) for the current position
    private final float[] ropeSin;

    public Engine(Model model) {
        this.model = model;
        this.c = model.config();
        this.w = model.weights();
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
        att = new float[256];
        ropeCos = new float[c.ropeDims() / 2];
        ropeSin = new float[c.ropeDims() / 2];
    }

    public Model model() {
        return model;
    }

    /**
     * Appends {@code tokens} to {@code cache} (a prefill) and returns the logits (vocab size) at the
     * last of them.
     */
    public float[] forward(KvCache cache, int[] tokens) {
        if (tokens.length == 0) {
            throw new IllegalArgumentException("forward needs at least one token");
        }
        checkFits(cache, tokens.length, "forward of " + tokens.length + " tokens");
        for (int t : tokens) {
            if (t < 0 || t >= c.vocabSize()) {
                throw new IllegalArgumentException("token id " + t + " is outside the vocabulary 0.." + (c.vocabSize() - 1));
            }
        }
        for (int i = 0; i < tokens.length; i++) {
            forwardOne(cache, tokens[i], i == tokens.length - 1);
        }
        return logits.clone();
    }

    private void checkFits(KvCache cache, long more, String what) {
        if (cache.layers() != c.layers() || cache.kvDim() != c.kvDim()) {
            throw new IllegalArgumentException("KV cache shape " + cache.layers() + "x" + cache.kvDim()
                    + " does not belong to model " + model.name());
        }
        if (cache.length() + more > c.contextLength()) {
            throw new IllegalArgumentException(what + " after " + cache.length() + " cached positions needs "
                    + (cache.length() + more) + " positions, more than the context length " + c.contextLength());
        }
    }

    /** One position through every layer; fills {@link #logits} when asked. */
    private void forwardOne(KvCache cache, int token, boolean computeLogits) {
        int pos = cache.length();
        int headDim = c.headDim();
        int kvDim = c.kvDim();
        int groupSize = c.heads() / c.kvHeads();
        float scale = (float) (1.0 / Math.sqrt(headDim));
        cache.ensureCapacity(pos + 1);
        if (att.length < pos + 1) {
            att = new float[Math.max(pos + 1, att.length * 2)];
        }
        ropeAngles(pos);

        w.tokenEmbedding.dequantizeRow(token, x, 0);

        for (int l = 0; l < c.layers(); l++) {
            Weights.Layer layer = w.layers[l];

            // attention rmsnorm
            rmsnorm(xb, x, 0, layer.attnNorm, c.dim());

            // qkv matmuls
            layer.wq.matmul(xb, q);
            layer.wk.matmul(xb, k);
            layer.wv.matmul(xb, v);

            // per-head QK norm (qwen3moe), then RoPE
            if (c.qkNorm()) {
                for (int h = 0; h < c.heads(); h++) {
                    rmsnorm(q, q, h * headDim, layer.qNorm, headDim);
                }
                for (int h = 0; h < c.kvHeads(); h++) {
                    rmsnorm(k, k, h * headDim, layer.kNorm, headDim);
                }
            }
            rope(q, c.heads());
            rope(k, c.kvHeads());

            // remember this position's key and value
            float[] keys = cache.keys(l);
            float[] values = cache.values(l);
            System.arraycopy(k, 0, keys, pos * kvDim, kvDim);
            System.arraycopy(v, 0, values, pos * kvDim, kvDim);

            // causal multi-head attention; query head h reads kv head h / groupSize
            for (int h = 0; h < c.heads(); h++) {
                int qOff = h * headDim;
                int kvOff = (h / groupSize) * headDim;
                float max = Float.NEGATIVE_INFINITY;
                for (int t = 0; t <= pos; t++) {
                    float score = 0;
                    int kOff = t * kvDim + kvOff;
                    for (int i = 0; i < headDim; i++) {
                        score += q[qOff + i] * keys[kOff + i];
                    }
                    att[t] = score * scale;
                    max = Math.max(max, att[t]);
                }
                float sum = 0;
                for (int t = 0; t <= pos; t++) {
                    att[t] = (float) Math.exp(att[t] - max);
                    sum += att[t];
                }
                java.util.Arrays.fill(attOut, qOff, qOff + headDim, 0f);
                for (int t = 0; t <= pos; t++) {
                    float a = att[t] / sum;
                    int vOff = t * kvDim + kvOff;
                    for (int i = 0; i < headDim; i++) {
                        attOut[qOff + i] += a * values[vOff + i];
                    }
                }
            }

            // output projection and residual
            layer.wo.matmul(attOut, xb2);
            add(x, xb2);

            // ffn rmsnorm, dense SwiGLU or mixture of experts, residual
            rmsnorm(xb, x, 0, layer.ffnNorm, c.dim());
            if (c.isMoe()) {
                moe(layer, xb, xb2);
            } else {
                swiglu(layer.w1, layer.w3, layer.w2, xb, xb2);
            }
            add(x, xb2);
        }
        cache.commit(token);

        if (computeLogits) {
            rmsnorm(xb, x, 0, w.outputNorm, c.dim());
            w.output.matmul(xb, logits);
        }
    }

    /**
     * Mixtral routing: softmax over all experts, keep the top k, renormalise their probabilities
     * to sum 1, and mix the chosen experts' SwiGLU outputs with them.
     */
    private void moe(Weights.Layer layer, float[] in, float[] out) {
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
        java.util.Arrays.fill(out, 0, c.dim(), 0f);
        for (int e : chosen) {
            float weight = routerLogits[e] / chosenSum;
            swiglu(layer.expertW1[e], layer.expertW3[e], layer.expertW2[e], in, moeOut);
            for (int i = 0; i < c.dim(); i++) {
                out[i] += weight * moeOut[i];
            }
        }
    }

    /** out = w2 (silu(w1 in) * (w3 in)). */
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

    /** cos and sin of pos * base^(-2i/d), computed as ggml does (float, theta multiplied up per pair). */
    private void ropeAngles(int pos) {
        float thetaScale = (float) Math.pow(c.ropeBase(), -2.0f / c.ropeDims());
        float theta = pos;
        for (int i = 0; i < ropeCos.length; i++) {
            ropeCos[i] = (float) Math.cos(theta);
            ropeSin[i] = (float) Math.sin(theta);
            theta *= thetaScale;
        }
    }

    /** Rotates the first ropeDims dimensions of each head of {@code vec}. */
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

    /** out[off..off+n) = in[off..off+n) / rms * weight. */
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

    /**
     * Runs many requests as one batch: each prompt is prefilled, then all sequences decode in
     * lockstep, one token each per step, until each finishes. Results are in request order and equal
     * to running each request alone.
     *
     * <p>Per step a sequence samples a token from its current logits; EOS ends it (STOP, EOS not in
     * the result), a stop sequence in the decoded text ends it (STOP_SEQUENCE, text cut before the
     * stop sequence), reaching {@code maxTokens} ends it (LENGTH); otherwise the token is fed to get
     * the next logits. With {@code commitAnswer} the final sampled token (EOS included) is fed as
     * well, so the cache holds the whole turn.
     *
     * @throws IllegalArgumentException when a prompt is empty, two requests share a cache, or a
     *                                  request's cached + prompt + maxTokens positions exceed the context length
     */
    public List<GenerationResult> generate(List<GenerationRequest> requests) {
        Map<KvCache, Boolean> seen = new IdentityHashMap<>();
        for (int i = 0; i < requests.size(); i++) {
            GenerationRequest r = requests.get(i);
            if (seen.put(r.cache(), Boolean.TRUE) != null) {
                throw new IllegalArgumentException("requests " + i + " and an earlier one share a KV cache");
            }
            if (r.promptIds().length == 0) {
                throw new IllegalArgumentException("request " + i + " has an empty prompt");
            }
            if (r.params().maxTokens() <= 0) {
                throw new IllegalArgumentException("request " + i + ": maxTokens must be > 0, got " + r.params().maxTokens());
            }
            checkFits(r.cache(), (long) r.promptIds().length + r.params().maxTokens(),
                    "request " + i + " (prompt " + r.promptIds().length + " + maxTokens " + r.params().maxTokens() + ")");
        }

        List<Sequence> seqs = new ArrayList<>();
        for (GenerationRequest r : requests) {
            Sequence s = new Sequence(r, model);
            long t0 = System.nanoTime();
            s.logits = forward(r.cache(), r.promptIds());
            s.prefillNanos = System.nanoTime() - t0;
            seqs.add(s);
        }

        boolean anyActive = true;
        while (anyActive) {
            anyActive = false;
            for (Sequence s : seqs) {
                if (s.finish != null) {
                    continue;
                }
                long t0 = System.nanoTime();
                s.step(this);
                s.decodeNanos += System.nanoTime() - t0;
                anyActive |= s.finish == null;
            }
        }
        List<GenerationResult> out = new ArrayList<>(seqs.size());
        for (Sequence s : seqs) {
            out.add(s.result());
        }
        return out;
    }

    /** Decoding state of one request in a batch. */
    private static final class Sequence {
        final GenerationRequest request;
        final Sampler sampler;
        final Detokenizer text;
        final int eos;
        final List<Integer> ids = new ArrayList<>();
        float[] logits;
        FinishReason finish;
        String finalText;
        long prefillNanos;
        long decodeNanos;

        Sequence(GenerationRequest request, Model model) {
            this.request = request;
            this.sampler = new Sampler(request.params());
            this.text = new Detokenizer(model.tokenizer());
            this.eos = model.tokenizer().eosId();
        }

        void step(Engine engine) {
            int token = sampler.sample(logits);
            if (token == eos) {
                finish = FinishReason.STOP;
                finalText = text.finish();
            } else {
                ids.add(token);
                text.add(token);
                String sofar = text.text();
                int cut = firstStop(sofar);
                if (cut >= 0) {
                    finish = FinishReason.STOP_SEQUENCE;
                    finalText = sofar.substring(0, cut);
                } else if (ids.size() >= request.params().maxTokens()) {
                    finish = FinishReason.LENGTH;
                    finalText = text.finish();
                }
            }
            if (finish == null || request.commitAnswer()) {
                logits = engine.forward(request.cache(), new int[] {token});
            }
        }

        private int firstStop(String s) {
            int cut = -1;
            for (String stop : request.params().stop()) {
                if (stop.isEmpty()) {
                    continue;
                }
                int i = s.indexOf(stop);
                if (i >= 0 && (cut < 0 || i < cut)) {
                    cut = i;
                }
            }
            return cut;
        }

        GenerationResult result() {
            return new GenerationResult(ids.stream().mapToInt(Integer::intValue).toArray(), finalText, finish,
                    prefillNanos, decodeNanos);
        }
    }
}
