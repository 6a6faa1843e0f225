package io.moestream.runtime.model;

import io.moestream.runtime.kernel.CpuMath;
import io.moestream.runtime.kernel.DotOrder;
import io.moestream.runtime.kernel.Kernels;
import io.moestream.runtime.kernel.Libm;
import io.moestream.runtime.kernel.MatmulPool;
import io.moestream.runtime.kv.CompressedAttention;
import io.moestream.runtime.kv.KvCodec;
import io.moestream.runtime.moe.Router;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * Runs the forward pass, written once for every architecture ({@link ModelConfig} says which parts
 * apply) and for a batch: {@link #step} computes many sequences' new tokens together, prefill
 * chunks and decode tokens mixed, with activations held as {@code [tokens][width]} matrices so each
 * weight matrix is visited once per step, and in MoE layers each expert runs once over the tokens
 * routed to it. Every token's arithmetic is the same whatever else is in the batch, so a batched
 * step gives bit-identical results to running each sequence alone.
 *
 * <p>The float operations are those of llama.cpp's CPU backend (AVX-512, GCC), op by op and in
 * the same order, so logits are bit-identical to its goldens; F32/F16 sums depend, as there, on
 * whether a sequence's chunk is one token ({@link DotOrder}). See docs/runtime.md.
 *
 * <p>Not thread-safe: one engine per thread (per Flink slot); it owns its activation buffers.
 */
public final class Engine {

    /** {@link #forward} splits longer prompts into steps of this many tokens (bounds the buffers). */
    static final int MAX_FORWARD_CHUNK = 512;

    private final Model model;
    private final ModelConfig c;
    private final Weights w;
    private final Router router;
    /** Each thread's attention scratch (a step's sequences attend in parallel); all of them, for the bytes-read total. */
    private final ThreadLocal<CompressedAttention> attention;
    private final List<CompressedAttention> attentions = new ArrayList<>();
    private Buffers b;

    public Engine(Model model) {
        this.model = model;
        this.c = model.config();
        this.w = model.weights();
        this.router = c.isMoe() ? new Router(c.routing()) : null;
        this.attention = ThreadLocal.withInitial(() -> {
            CompressedAttention a = CompressedAttention.of(c);
            synchronized (attentions) {
                attentions.add(a);
            }
            return a;
        });
        this.b = new Buffers(0);
    }

    public Model model() {
        return model;
    }

    /** K/V bytes the attention read from the caches since the last {@link #resetKvBytesRead()} (decode bandwidth). */
    public long kvBytesRead() {
        synchronized (attentions) {
            return attentions.stream().mapToLong(CompressedAttention::bytesRead).sum();
        }
    }

    public void resetKvBytesRead() {
        synchronized (attentions) {
            attentions.forEach(CompressedAttention::resetBytesRead);
        }
    }

    /**
     * Appends {@code tokens} to {@code cache} (a prefill) and returns the logits (vocab size) at the
     * last of them.
     */
    public float[] forward(KvCache cache, int[] tokens) {
        if (tokens.length == 0) {
            throw new IllegalArgumentException("forward needs at least one token");
        }
        checkTokens(tokens);
        checkFits(cache, tokens.length, "forward of " + tokens.length + " tokens");
        float[] logits = null;
        for (int from = 0; from < tokens.length; from += MAX_FORWARD_CHUNK) {
            int to = Math.min(tokens.length, from + MAX_FORWARD_CHUNK);
            logits = step(StepPlan.of(new StepPlan.Sequence(cache, Arrays.copyOfRange(tokens, from, to), to == tokens.length)))
                    .logits(0);
        }
        return logits;
    }

    /**
     * One forward pass over all sequences of the plan: appends each one's tokens to its cache and
     * returns the logits where asked.
     *
     * @throws IllegalArgumentException when a sequence has no tokens or an out-of-vocabulary token,
     *                                  two share a cache, or a cache would exceed the context length
     */
    public StepResult step(StepPlan plan) {
        Map<KvCache, Boolean> seen = new IdentityHashMap<>();
        for (StepPlan.Sequence s : plan.sequences()) {
            if (s.tokens().length == 0) {
                throw new IllegalArgumentException("a step sequence needs at least one token");
            }
            if (seen.put(s.cache(), Boolean.TRUE) != null) {
                throw new IllegalArgumentException("two sequences of a step share a KV cache");
            }
            checkTokens(s.tokens());
            checkFits(s.cache(), s.tokens().length, "step of " + s.tokens().length + " tokens");
        }
        int n = plan.tokens();
        if (n > b.capacity) {
            b = new Buffers(Math.max(n, b.capacity * 2));
        }
        // row t of every matrix is one token: its sequence, cache and position
        KvCache[] caches = new KvCache[n];
        int[] pos = new int[n];
        DotOrder[] order = new DotOrder[n];
        int t = 0;
        int sequences = 0;
        for (StepPlan.Sequence s : plan.sequences()) {
            b.sequenceStart[sequences++] = t;
            int start = s.cache().length();
            for (int j = 0; j < s.tokens().length; j++, t++) {
                caches[t] = s.cache();
                pos[t] = start + j;
                order[t] = s.tokens().length > 1 ? DotOrder.TINYBLAS : DotOrder.VEC_DOT;
                w.tokenEmbedding.dequantizeRow(s.tokens()[j], b.x[t], 0);
                ropeAngles(pos[t], b.ropeCos[t], b.ropeSin[t]);
            }
        }

        b.sequenceStart[sequences] = n;
        for (int l = 0; l < c.layers(); l++) {
            layer(l, n, sequences, caches, pos, order);
        }

        // the output head once for every sequence that wants logits (each row in decode order)
        t = 0;
        float[][] logits = new float[plan.sequences().size()][];
        float[][] rows = new float[logits.length][];
        int wanted = 0;
        for (int i = 0; i < logits.length; i++) {
            StepPlan.Sequence s = plan.sequences().get(i);
            s.cache().commit(s.tokens());
            t += s.tokens().length;
            if (s.logits()) {
                rmsnorm(b.xb[wanted], b.x[t - 1], 0, w.outputNorm, c.dim());
                logits[i] = new float[c.vocabSize()];
                rows[wanted++] = logits[i];
            }
        }
        w.output.matmul(b.xb, rows, wanted, b.decodeOrder);
        return new StepResult(Arrays.asList(logits));
    }

    /** One transformer block over the step's n tokens, updating the residual stream b.x in place. */
    private void layer(int l, int n, int sequences, KvCache[] caches, int[] pos, DotOrder[] order) {
        Weights.Layer layer = w.layers[l];
        int headDim = c.headDim();
        int kvDim = c.kvDim();
        int qDim = c.qDim();

        // attention rmsnorm
        for (int t = 0; t < n; t++) {
            rmsnorm(b.xb[t], b.x[t], 0, layer.attnNorm, c.dim());
        }

        // qkv matmuls (fused: one matrix whose rows are q, then k, then v), biases
        if (c.fusedQkv()) {
            matmul(layer.wqkv, b.xb, b.qkv, n, order);
            for (int t = 0; t < n; t++) {
                System.arraycopy(b.qkv[t], 0, b.q[t], 0, qDim);
                System.arraycopy(b.qkv[t], qDim, b.k[t], 0, kvDim);
                System.arraycopy(b.qkv[t], qDim + kvDim, b.v[t], 0, kvDim);
            }
        } else {
            WeightMatrix.Products.local()
                    .add(layer.wq, b.xb, b.q, n, order)
                    .add(layer.wk, b.xb, b.k, n, order)
                    .add(layer.wv, b.xb, b.v, n, order)
                    .run();
        }
        for (int t = 0; t < n; t++) {
            addBias(b.q[t], layer.bq);
            addBias(b.k[t], layer.bk);
            addBias(b.v[t], layer.bv);
        }

        // per-head QK norm (qwen3moe, bailingmoe2), then RoPE, then remember this position's k and v
        for (int t = 0; t < n; t++) {
            if (c.qkNorm()) {
                for (int h = 0; h < c.heads(); h++) {
                    rmsnorm(b.q[t], b.q[t], h * headDim, layer.qNorm, headDim);
                }
                for (int h = 0; h < c.kvHeads(); h++) {
                    rmsnorm(b.k[t], b.k[t], h * headDim, layer.kNorm, headDim);
                }
            }
            rope(b.q[t], c.heads(), b.ropeCos[t], b.ropeSin[t]);
            rope(b.k[t], c.kvHeads(), b.ropeCos[t], b.ropeSin[t]);
            caches[t].paged().write(l, pos[t], b.k[t], 0, b.v[t], 0);
        }

        attention(l, caches, pos, order, n, sequences);

        // output projection and residual
        matmul(layer.wo, b.attOut, b.xb2, n, order);
        for (int t = 0; t < n; t++) {
            addBias(b.xb2[t], layer.bo);
            add(b.x[t], b.xb2[t]);
        }

        // ffn rmsnorm, dense SwiGLU or mixture of experts (+ shared expert), residual
        for (int t = 0; t < n; t++) {
            rmsnorm(b.xb[t], b.x[t], 0, layer.ffnNorm, c.dim());
        }
        // llama.cpp runs the last layer's FFN only for the rows whose logits are wanted, each
        // sequence's alone: one token, so decode order (the other rows' results are never read)
        DotOrder[] ffnOrder = l == c.layers() - 1 ? b.decodeOrder : order;
        if (c.isMoeLayer(l)) {
            moe(layer, n, ffnOrder);
        } else {
            swiglu(layer.w1, layer.w3, layer.w2, b.xb, b.xb2, n, ffnOrder);
        }
        for (int t = 0; t < n; t++) {
            add(b.x[t], b.xb2[t]);
        }
    }

    /**
     * Mixture of experts over the step's tokens (route -> dispatch -> experts -> combine): the
     * {@link Router} picks each token's experts and weights, each chosen expert then runs one
     * SwiGLU over all tokens routed to it, and each token sums its weighted experts' outputs in
     * the router's order; the shared expert (optionally sigmoid-gated per token) is added on top.
     * Writes b.xb2.
     */
    private void moe(Weights.Layer layer, int n, DotOrder[] order) {
        int k = c.expertsUsed();
        int experts = c.experts();
        int[] count = new int[experts];
        for (int t = 0; t < n; t++) {
            layer.router.matmul(b.xb[t], b.routerLogits, order[t]);
            router.route(b.routerLogits, layer.selectionBias, b.chosen[t], b.chosenWeights[t]);
            for (int j = 0; j < k; j++) {
                count[b.chosen[t][j]]++;
            }
        }
        // dispatch: the rows routed to each expert, in token order
        int[][] tokens = new int[experts][];
        int[][] slots = new int[experts][];
        float[][][] in = new float[experts][][];
        for (int e = 0; e < experts; e++) {
            tokens[e] = new int[count[e]];
            slots[e] = new int[count[e]];
            in[e] = new float[count[e]][];
            int m = 0;
            for (int t = 0; t < n; t++) {
                for (int j = 0; j < k; j++) {
                    if (b.chosen[t][j] == e) {
                        tokens[e][m] = t;
                        slots[e][m] = j;
                        in[e][m++] = b.xb[t];
                    }
                }
            }
        }
        // every chosen expert's gate and up as one pool job, then every down as one (with the
        // shared expert's); llama.cpp's mul_mat_id computes each (token, expert) row alone: decode order
        float[][][] gates = new float[experts][][];
        float[][][] up = new float[experts][][];
        float[][][] down = new float[experts][][];
        for (int e = 0, start = 0; e < experts; start += count[e], e++) {
            gates[e] = Arrays.copyOfRange(b.expertGate, start, start + count[e]);
            up[e] = Arrays.copyOfRange(b.expertUp, start, start + count[e]);
            down[e] = Arrays.copyOfRange(b.expertDown, start, start + count[e]);
        }
        WeightMatrix.Products products = WeightMatrix.Products.local();
        for (int e = 0; e < experts; e++) {
            products.add(layer.expertW1[e], in[e], gates[e], count[e], b.decodeOrder)
                    .add(layer.expertW3[e], in[e], up[e], count[e], b.decodeOrder);
        }
        if (layer.sharedW1 != null) {
            products.add(layer.sharedW1, b.xb, b.hb, n, order).add(layer.sharedW3, b.xb, b.hb2, n, order);
        }
        products.run();
        products = WeightMatrix.Products.local();
        for (int e = 0; e < experts; e++) {
            int width = layer.expertW1[e].rows();
            for (int i = 0; i < count[e]; i++) {
                Kernels.get().swiglu(gates[e][i], up[e][i], width);
            }
            products.add(layer.expertW2[e], gates[e], down[e], count[e], b.decodeOrder);
        }
        if (layer.sharedW1 != null) {
            int width = layer.sharedW1.rows();
            for (int t = 0; t < n; t++) {
                Kernels.get().swiglu(b.hb[t], b.hb2[t], width);
            }
            products.add(layer.sharedW2, b.hb, b.ffnOut, n, order);
        }
        products.run();
        for (int e = 0; e < experts; e++) {
            for (int i = 0; i < count[e]; i++) {
                float w = b.chosenWeights[tokens[e][i]][slots[e][i]];
                float[] y = down[e][i];
                float[] weighted = b.expertOut[tokens[e][i]][slots[e][i]];
                for (int d = 0; d < weighted.length; d++) {
                    weighted[d] = y[d] * w;
                }
            }
        }
        // combine: each token adds its weighted experts in the router's order, as llama.cpp's chain of adds
        for (int t = 0; t < n; t++) {
            System.arraycopy(b.expertOut[t][0], 0, b.xb2[t], 0, c.dim());
            for (int j = 1; j < k; j++) {
                add(b.xb2[t], b.expertOut[t][j]);
            }
        }
        if (layer.sharedW1 != null) {
            for (int t = 0; t < n; t++) {
                float[] shared = b.ffnOut[t];
                if (layer.sharedGate != null) {
                    // llama.cpp's sigmoid here is silu(z) / z, z a one-row F32 product (vec_dot order);
                    // it is NaN at z = 0, where this takes the limit 1/2
                    float z = CpuMath.dotF32(layer.sharedGate, 0, b.xb[t], 0, c.dim());
                    float gate = z == 0f ? 0.5f : CpuMath.silu(z) / z;
                    for (int d = 0; d < shared.length; d++) {
                        shared[d] *= gate;
                    }
                }
                add(b.xb2[t], shared);
            }
        }
    }

    /** out[t] = w2 (silu(w1 in[t]) * (w3 in[t])) for the first n rows. */
    private void swiglu(WeightMatrix w1, WeightMatrix w3, WeightMatrix w2, float[][] in, float[][] out, int n, DotOrder[] order) {
        WeightMatrix.Products.local().add(w1, in, b.hb, n, order).add(w3, in, b.hb2, n, order).run();
        int width = w1.rows();
        for (int t = 0; t < n; t++) {
            Kernels.get().swiglu(b.hb[t], b.hb2[t], width);
        }
        matmul(w2, b.hb, out, n, order);
    }

    /**
     * out[t] = W in[t] for the first n rows, reading each weight row once for all n inputs
     * (bit-identical to n single products, so batched steps equal single-sequence runs).
     */
    static void matmul(WeightMatrix w, float[][] in, float[][] out, int n, DotOrder[] order) {
        w.matmul(in, out, n, order);
    }

    /** cos and sin of pos * base^(-2i/d), computed as ggml does (float, theta multiplied up per pair, glibc's powf/cosf/sinf). */
    private void ropeAngles(int pos, float[] cos, float[] sin) {
        float thetaScale = Libm.powf(c.ropeBase(), -2.0f / c.ropeDims());
        float theta = pos;
        for (int i = 0; i < cos.length; i++) {
            cos[i] = Libm.cosf(theta);
            sin[i] = Libm.sinf(theta);
            theta *= thetaScale;
        }
    }

    /** Rotates the first ropeDims dimensions of each head of {@code vec}; the rest pass through. */
    private void rope(float[] vec, int nHeads, float[] cos, float[] sin) {
        int headDim = c.headDim();
        int half = c.ropeDims() / 2;
        boolean adjacent = c.ropeType() == ModelConfig.RopeType.NORM;
        for (int h = 0; h < nHeads; h++) {
            int base = h * headDim;
            for (int i = 0; i < half; i++) {
                int a = adjacent ? base + 2 * i : base + i;
                int bb = adjacent ? a + 1 : base + i + half;
                float x0 = vec[a];
                float x1 = vec[bb];
                // GCC compiles ggml's x0*cos - x1*sin and x0*sin + x1*cos as one fma each, the
                // second product rounded first
                vec[a] = Math.fma(x0, cos[i], -(x1 * sin[i]));
                vec[bb] = Math.fma(x0, sin[i], x1 * cos[i]);
            }
        }
    }

    /** out[off..off+n) = in[off..off+n) * (1 / sqrt(mean of squares + eps)) * weight; the squares summed in double, as ggml. */
    private void rmsnorm(float[] out, float[] in, int off, float[] weight, int n) {
        double ss = 0;
        for (int i = 0; i < n; i++) {
            ss += in[off + i] * in[off + i];
        }
        float mean = (float) (ss / n);
        float scale = 1f / (float) Math.sqrt(mean + c.rmsEps());
        for (int i = 0; i < n; i++) {
            out[off + i] = in[off + i] * scale * weight[i];
        }
    }

    private static void addBias(float[] v, float[] bias) {
        if (bias != null) {
            add(v, bias);
        }
    }

    private static void add(float[] acc, float[] d) {
        for (int i = 0; i < d.length; i++) {
            acc[i] += d[i];
        }
    }

    private void checkTokens(int[] tokens) {
        for (int t : tokens) {
            if (t < 0 || t >= c.vocabSize()) {
                throw new IllegalArgumentException("token id " + t + " is outside the vocabulary 0.." + (c.vocabSize() - 1));
            }
        }
    }

    void checkFits(KvCache cache, long more, String what) {
        if (cache.layers() != c.layers() || cache.kvDim() != c.kvDim()) {
            throw new IllegalArgumentException("KV cache shape " + cache.layers() + "x" + cache.kvDim()
                    + " does not belong to model " + model.name());
        }
        if (cache.length() + more > c.contextLength()) {
            throw new IllegalArgumentException(what + " after " + cache.length() + " cached positions needs "
                    + (cache.length() + more) + " positions, more than the context length " + c.contextLength());
        }
    }

    /**
     * Runs many requests as one batch with continuous batching: a {@link io.moestream.runtime.sched.Scheduler}
     * plans each step (decode tokens first, then prefill chunks, within a token budget), this engine
     * computes it. Results are in request order and equal to running each request alone.
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
        return new Generation(this, requests).run();
    }

    /**
     * Causal attention over the paged cache, reading compressed blocks in place: token t sees
     * positions 0..pos[t] of its own sequence (a streaming head only sink + window). Before the
     * query at pos[t], the blocks that one-position-at-a-time would have sealed by then are
     * compressed for this layer, so a batched step stays bit-identical to single steps. Writes
     * b.attOut. The step goes in rounds: each sequence's next tokens (from rows
     * b.sequenceStart[g] .. b.sequenceStart[g + 1]) up to a block boundary, whose queries all see
     * the same sealed blocks (with float32 caches, where sealing changes nothing, the whole
     * sequence), are sealed for, then every (sequence, KV head) is a pool task over them in order,
     * so one long prompt uses every thread. Decoding (one token per sequence) is one round.
     */
    private void attention(int l, KvCache[] caches, int[] pos, DotOrder[] order, int n, int sequences) {
        // rounds: each sequence's next tokens up to a block boundary (they all see the same sealed
        // blocks; float32 blocks are never re-encoded, so there a round is the whole sequence),
        // sealed here, then every (sequence, KV head) a task over its round's tokens in order (its
        // query heads' statistics its own in the head classifier)
        boolean float32 = allFloat32(caches, n);
        int kvHeads = c.kvHeads();
        int[] next = b.roundNext;
        System.arraycopy(b.sequenceStart, 0, next, 0, sequences);
        while (true) {
            boolean any = false;
            for (int g = 0; g < sequences; g++) {
                int t = next[g];
                int end = b.sequenceStart[g + 1];
                b.roundStart[g] = t;
                if (t < end) {
                    any = true;
                    if (!float32) {
                        int bt = caches[t].paged().blockTokens();
                        int block = pos[t] / bt;
                        caches[t].paged().sealLayerBelow(l, pos[t]);
                        while (t < end && pos[t] / bt == block) {
                            t++;
                        }
                    } else {
                        t = end;
                    }
                }
                b.roundEnd[g] = t;
                next[g] = t;
            }
            if (!any) {
                return;
            }
            MatmulPool.get().run(sequences * kvHeads, task -> {
                int g = task / kvHeads;
                CompressedAttention attention = this.attention.get();
                for (int t = b.roundStart[g]; t < b.roundEnd[g]; t++) {
                    attention.setObserver(caches[t].headClassifier());
                    try {
                        attention.attendKvHead(caches[t].paged(), l, task % kvHeads, b.q[t], pos[t], b.attOut[t], order[t]);
                    } finally {
                        attention.setObserver(null);
                    }
                }
            });
        }
    }

    private static boolean allFloat32(KvCache[] caches, int n) {
        for (int t = 0; t < n; t++) {
            if (caches[t].paged().codec() != KvCodec.F32) {
                return false;
            }
        }
        return true;
    }

    /** Activation matrices for up to {@code capacity} tokens per step (llama2.c names). */
    private final class Buffers {
        final int capacity;
        final float[][] x;             // (n, dim) residual stream
        final float[][] xb;            // (n, dim) normalised input of a sub-layer
        final float[][] xb2;           // (n, dim) sub-layer output
        final float[][] qkv;           // (n, qDim + 2 kvDim), fused QKV only
        final float[][] q;             // (n, heads * headDim)
        final float[][] k;             // (n, kvHeads * headDim)
        final float[][] v;             // (n, kvHeads * headDim)
        final float[][] attOut;        // (n, heads * headDim)
        final float[][] hb;            // (n, widest ffn) gate activation
        final float[][] hb2;           // (n, widest ffn) up activation
        final float[][] ffnOut;        // (n, dim) one expert's (or the shared expert's) output
        final float[][] ropeCos;       // (n, ropeDims / 2)
        final float[][] ropeSin;       // (n, ropeDims / 2)
        final int[][] chosen;          // (n, expertsUsed) routed experts
        final float[][] chosenWeights; // (n, expertsUsed) their weights
        final float[] routerLogits;    // (experts)
        final DotOrder[] decodeOrder;  // (n) all VEC_DOT
        final float[][][] expertOut;   // (n, expertsUsed, dim) weighted expert outputs
        final float[][] expertGate;    // (n * expertsUsed, expertDim) routed rows' gate activations, grouped by expert
        final float[][] expertUp;      // (n * expertsUsed, expertDim) their up activations
        final float[][] expertDown;    // (n * expertsUsed, dim) their expert outputs
        final int[] sequenceStart;     // (n + 1) first row of each of the step's sequences, then n
        final int[] roundNext;         // (n) attention rounds of a prefill: each sequence's next row,
        final int[] roundStart;        //     its rows in this round,
        final int[] roundEnd;          //     up to here

        Buffers(int capacity) {
            this.capacity = capacity;
            int ffn = Math.max(c.ffnDim(), Math.max(c.expertDim(), c.sharedExpertDim()));
            x = new float[capacity][c.dim()];
            xb = new float[capacity][c.dim()];
            xb2 = new float[capacity][c.dim()];
            qkv = new float[c.fusedQkv() ? capacity : 0][c.qDim() + 2 * c.kvDim()];
            q = new float[capacity][c.qDim()];
            k = new float[capacity][c.kvDim()];
            v = new float[capacity][c.kvDim()];
            attOut = new float[capacity][c.qDim()];
            hb = new float[capacity][ffn];
            hb2 = new float[capacity][ffn];
            ffnOut = new float[c.isMoe() ? capacity : 0][c.dim()];
            ropeCos = new float[capacity][c.ropeDims() / 2];
            ropeSin = new float[capacity][c.ropeDims() / 2];
            chosen = new int[capacity][c.expertsUsed()];
            chosenWeights = new float[capacity][c.expertsUsed()];
            routerLogits = new float[Math.max(1, c.experts())];
            decodeOrder = new DotOrder[capacity];
            expertOut = new float[c.isMoe() ? capacity : 0][c.expertsUsed()][c.dim()];
            int routed = c.isMoe() ? capacity * c.expertsUsed() : 0;
            expertGate = new float[routed][c.expertDim()];
            expertUp = new float[routed][c.expertDim()];
            expertDown = new float[routed][c.dim()];
            Arrays.fill(decodeOrder, DotOrder.VEC_DOT);
            sequenceStart = new int[capacity + 1];
            roundNext = new int[capacity];
            roundStart = new int[capacity];
            roundEnd = new int[capacity];
        }
    }
}
