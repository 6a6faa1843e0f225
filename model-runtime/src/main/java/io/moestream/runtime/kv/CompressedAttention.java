package io.moestream.runtime.kv;

import io.moestream.runtime.kernel.CpuMath;
import io.moestream.runtime.kernel.Kernels;
import io.moestream.runtime.kernel.DotOrder;
import io.moestream.runtime.model.ModelConfig;

/**
 * Causal scaled-dot-product attention of query heads over a {@link PagedKvCache}, reading each
 * block in its stored codec (dequantizing inside the loop: int keys via per-group
 * {@code q . min + (q * scale) . codes}, int values via per-token-group {@code a*min + (a*scale)*code}).
 *
 * <p>GQA: query head {@code h} reads KV head {@code h / (heads / kvHeads)}. Scale
 * {@code 1/sqrt(headDim)} unless given. A streaming head (cache's {@link HeadPolicy}) sees positions
 * {@code t < S} and {@code t > queryPos - W}; a retrieval head sees {@code 0..queryPos}. With a float32
 * cache the arithmetic is the same, in the same order, as {@code Engine}'s attention.
 *
 * <p>Not thread-safe (owns scratch buffers); one per engine.
 */
public final class CompressedAttention {

    private final int heads;
    private final int kvHeads;
    private final int headDim;
    private final int group;
    private final float scale;
    /** Each layer's sliding window (0: the layer sees the whole sequence). */
    private final int[] windows;
    private float[] att = new float[256];
    private float[] acc = new float[0];
    /** The value sums channel-major, {@code [headDim][lanes]}, while latent int8 slabs add to them. */
    private float[] accColumns = new float[0];
    /** The float32 value arrays of the blocks a query reads (see {@link #f32Blocks}), and their bytes. */
    private float[][] vBlocks = new float[16][];
    /** Their key arrays likewise. */
    private float[][] kBlocks = new float[16][];
    private long lastBytes;
    /** Scores, then probabilities, of each query head of a KV head group ({@link #attendKvHead}). */
    private float[][] groupAtt = new float[0][];
    private final float[][] single = new float[1][];
    /** The visible spans of the current query ({@link #visibleSpans}) and its visible ranges' ends. */
    private int[] spans = new int[48];
    private int visibleA;
    private int visibleB;
    private final float[] scratch;
    private AttentionObserver observer;
    private long bytesRead;

    public CompressedAttention(int heads, int kvHeads, int headDim) {
        this(heads, kvHeads, headDim, 1f / (float) Math.sqrt(headDim));
    }

    /** Scores are {@code (q . k) * scale}. */
    public CompressedAttention(int heads, int kvHeads, int headDim, float scale) {
        this(heads, kvHeads, headDim, scale, new int[0]);
    }

    /**
     * Scores are {@code (q . k) * scale}; layer l's queries see only their last {@code windows[l]}
     * positions (themselves included) when that is &gt; 0 (sliding-window layers; layers past the
     * array's end have none).
     */
    public CompressedAttention(int heads, int kvHeads, int headDim, float scale, int[] windows) {
        if (heads <= 0 || kvHeads <= 0 || heads % kvHeads != 0 || headDim <= 0 || !(scale > 0) || !Float.isFinite(scale)) {
            throw new IllegalArgumentException("bad attention shape: heads " + heads + ", kvHeads " + kvHeads + ", headDim " + headDim
                    + ", scale " + scale);
        }
        this.heads = heads;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.group = heads / kvHeads;
        this.scale = scale;
        this.windows = windows.clone();
        this.scratch = new float[Math.max(headDim, 64)];
    }

    public static CompressedAttention of(ModelConfig c) {
        int[] windows = new int[c.layers()];
        for (int l = 0; l < windows.length; l++) {
            windows[l] = c.isSlidingLayer(l) ? c.attention().window() : 0;
        }
        return new CompressedAttention(c.heads(), c.kvHeads(), c.headDim(), c.attentionScale(), windows);
    }

    /** Observer of full-attention probabilities (null = none); e.g. a {@link HeadClassifier} during prefill. */
    public void setObserver(AttentionObserver observer) {
        this.observer = observer;
    }

    /** Bytes of K/V data read since the last {@link #resetBytesRead()} (the decode-time bandwidth figure). */
    public long bytesRead() {
        return bytesRead;
    }

    public void resetBytesRead() {
        bytesRead = 0;
    }

    /** All query heads of {@code layer} in decode order: {@code q} is {@code heads * headDim}, {@code out} likewise. */
    public void attendAll(PagedKvCache cache, int layer, float[] q, int queryPos, float[] out) {
        attendAll(cache, layer, q, queryPos, out, DotOrder.VEC_DOT);
    }

    /** All query heads of {@code layer}, the value sums in {@code order} (the query's chunk: one token or more). */
    public void attendAll(PagedKvCache cache, int layer, float[] q, int queryPos, float[] out, DotOrder order) {
        for (int kvHead = 0; kvHead < kvHeads; kvHead++) {
            attendKvHead(cache, layer, kvHead, q, queryPos, out, order);
        }
    }

    /** The query heads of {@code layer} that read KV head {@code kvHead}, as {@link #attendAll} computes them. */
    public void attendKvHead(PagedKvCache cache, int layer, int kvHead, float[] q, int queryPos, float[] out, DotOrder order) {
        attendKvHead(cache, layer, kvHead, q, queryPos, out, order, null);
    }

    /**
     * {@link #attendKvHead(PagedKvCache, int, int, float[], int, float[], DotOrder)} with attention
     * sinks: {@code sinks[h]} is query head h's sink logit (null: none), which takes part in each
     * softmax and adds no value.
     */
    public void attendKvHead(PagedKvCache cache, int layer, int kvHead, float[] q, int queryPos, float[] out, DotOrder order,
            float[] sinks) {
        checkQuery(cache, queryPos);
        int len = queryPos + 1;
        int spanCount = visibleSpans(cache, layer, kvHead, len);
        if (!f32Blocks(cache, layer, kvHead, len, spanCount)) {
            for (int h = kvHead * group; h < (kvHead + 1) * group; h++) {
                attend(cache, layer, h, q, h * headDim, queryPos, out, h * headDim, order, sinks);
            }
            return;
        }
        // every visible block is float32: the group's query heads together, each block's keys and
        // values read once for all of them (same operations per head as attend)
        bytesRead += (group - 1) * lastBytes;
        int padded = (len + 15) & ~15;
        if (groupAtt.length < group || groupAtt[0].length < padded) {
            groupAtt = new float[group][Math.max(padded, 2 * (groupAtt.length == 0 ? 0 : groupAtt[0].length))];
        }
        int h0 = kvHead * group;
        if (sinks == null) {
            Kernels.get().attendF32(kBlocks, vBlocks, cache.blockTokens(), headDim, len, visibleA, visibleB, q, h0 * headDim,
                    group, scale, groupAtt, lanes(order), out, h0 * headDim);
        } else {
            Kernels.get().attendF32(kBlocks, vBlocks, cache.blockTokens(), headDim, len, visibleA, visibleB, q, h0 * headDim,
                    group, scale, groupAtt, lanes(order), out, h0 * headDim, sinks, h0);
        }
        if (observer != null && visibleA == len) {
            for (int g = 0; g < group; g++) {
                observer.observe(layer, h0 + g, queryPos, groupAtt[g]);
            }
        }
    }

    /**
     * The positions a query at {@code len - 1} sees in (layer, kvHead): [0, a) and [b, len) (a == b ==
     * len unless the head streams or the layer slides: then [0, 0) and [len - window, len), within the
     * streaming head's last positions), kept in {@link #visibleA} and {@link #visibleB}, and cut at block
     * boundaries into spans: span i is block {@code spans[3i]}, positions [{@code spans[3i+1]},
     * {@code spans[3i+2]}). Returns the number of spans.
     */
    private int visibleSpans(PagedKvCache cache, int layer, int kvHead, int len) {
        HeadPolicy p = cache.policy();
        boolean streaming = p.isStreaming(layer, kvHead) && len > p.sink() + p.window();
        visibleA = streaming ? p.sink() : len;
        visibleB = streaming ? len - p.window() : len;
        int window = layer < windows.length ? windows[layer] : 0;
        if (window > 0 && len > window) {
            visibleB = Math.max(len - window, streaming ? visibleB : 0);
            visibleA = 0;
        }
        int bt = cache.blockTokens();
        int n = 0;
        for (int r = 0; r < 2; r++) {
            int from = r == 0 ? 0 : visibleB;
            int to = r == 0 ? visibleA : len;
            for (int bi = from / bt; from < to; bi++) {
                int end = Math.min(to, bi * bt + bt);
                if (spans.length < 3 * n + 3) {
                    spans = java.util.Arrays.copyOf(spans, 2 * spans.length + 3);
                }
                spans[3 * n] = bi;
                spans[3 * n + 1] = from;
                spans[3 * n + 2] = end;
                n++;
                from = end;
            }
        }
        return n;
    }

    private void checkQuery(PagedKvCache cache, int queryPos) {
        if (cache.shape().headDim() != headDim || cache.shape().kvHeads() != kvHeads) {
            throw new IllegalArgumentException("cache shape " + cache.shape() + " does not match attention " + heads + "/" + kvHeads + "x" + headDim);
        }
        if (queryPos < 0 || queryPos >= cache.blockCount() * cache.blockTokens()) {
            throw new IllegalArgumentException("query position " + queryPos + " is not written (" + cache.blockCount() + " blocks)");
        }
    }

    /** {@link #attend(PagedKvCache, int, int, float[], int, int, float[], int, DotOrder)} in decode order. */
    public void attend(PagedKvCache cache, int layer, int qHead, float[] q, int qOff, int queryPos, float[] out, int outOff) {
        attend(cache, layer, qHead, q, qOff, queryPos, out, outOff, DotOrder.VEC_DOT);
    }

    /**
     * {@code out[outOff .. outOff+headDim)} = attention of query head {@code qHead} (vector at
     * {@code q[qOff..]}) at position {@code queryPos} over the cache's positions it may see. Layer
     * {@code layer} of positions {@code 0..queryPos} must be written.
     *
     * <p>With a float32 cache the float operations are those of llama.cpp's CPU attention without
     * flash attention (KV cache padded to a multiple of 256 cells, masked cells contributing exact
     * zeros): scores {@code (q . k) * scale}, softmax with ggml's vector expf summed per 16 positions
     * into a double, probabilities times {@code (float) (1 / sum)}, then the value sums in
     * {@code order}.
     */
    public void attend(PagedKvCache cache, int layer, int qHead, float[] q, int qOff, int queryPos, float[] out, int outOff,
            DotOrder order) {
        attend(cache, layer, qHead, q, qOff, queryPos, out, outOff, order, null);
    }

    /** The same with attention sinks ({@code sinks[qHead]} the head's sink logit; null: none). */
    public void attend(PagedKvCache cache, int layer, int qHead, float[] q, int qOff, int queryPos, float[] out, int outOff,
            DotOrder order, float[] sinks) {
        checkQuery(cache, queryPos);
        int kvHead = qHead / group;
        int len = queryPos + 1;
        int padded = (len + 15) & ~15;
        if (att.length < padded) {
            att = new float[Math.max(padded, att.length * 2)];
        }
        int spanCount = visibleSpans(cache, layer, kvHead, len);
        int a = visibleA;
        int b = visibleB;
        int bt = cache.blockTokens();
        int lanes = lanes(order);
        if (f32Blocks(cache, layer, kvHead, len, spanCount)) {
            single[0] = att;
            if (sinks == null) {
                Kernels.get().attendF32(kBlocks, vBlocks, bt, headDim, len, a, b, q, qOff, 1, scale, single, lanes, out, outOff);
            } else {
                Kernels.get().attendF32(kBlocks, vBlocks, bt, headDim, len, a, b, q, qOff, 1, scale, single, lanes, out, outOff,
                        sinks, qHead);
            }
        } else {
            float max = Float.NEGATIVE_INFINITY;
            for (int i = 0; i < spanCount; i++) {
                int bi = spans[3 * i];
                int first = bi * bt;
                int from = spans[3 * i + 1];
                int end = spans[3 * i + 2];
                HeadSlab s = cache.slab(bi, layer, kvHead);
                if (s == null) {
                    throw new IllegalStateException("block " + bi + " of layer " + layer + " head " + kvHead
                            + " was dropped but position " + from + " is visible to query " + queryPos);
                }
                s.scores(q, qOff, from - first, end - first, scale, att, first, scratch);
                for (int t = from; t < end; t++) {
                    max = Math.max(max, att[t]);
                }
            }
            if (sinks == null) {
                softmax(att, len, a, b, max);
            } else {
                Kernels.get().maskedSoftmax(att, len, a, b, max, sinks[qHead]);
            }
            valueSums(cache, layer, kvHead, spanCount, lanes, out, outOff);
        }
        if (observer != null && a == len) {
            observer.observe(layer, qHead, queryPos, att);
        }
    }

    /**
     * Whether every visible block of (layer, kvHead) holds float32 values; if so {@link #vBlocks}
     * has them (null for blocks nothing visible falls in) and the bytes are counted as read.
     */
    private boolean f32Blocks(PagedKvCache cache, int layer, int kvHead, int len, int spanCount) {
        int blocks = (len + cache.blockTokens() - 1) / cache.blockTokens();
        if (vBlocks.length < blocks) {
            vBlocks = new float[Math.max(blocks, 2 * vBlocks.length)][];
            kBlocks = new float[vBlocks.length][];
        }
        java.util.Arrays.fill(vBlocks, 0, blocks, null);
        java.util.Arrays.fill(kBlocks, 0, blocks, null);
        long bytes = 0;
        for (int i = 0; i < spanCount; i++) {
            if (!(cache.slab(spans[3 * i], layer, kvHead) instanceof HeadSlab.F32Slab f)) {
                return false;
            }
            vBlocks[spans[3 * i]] = f.v;
            kBlocks[spans[3 * i]] = f.k;
            bytes += f.bytes() * (spans[3 * i + 2] - spans[3 * i + 1]) / f.tokens();
        }
        bytesRead += bytes;
        lastBytes = bytes;
        return true;
    }

    /**
     * The value sums block by block through each slab's own {@link HeadSlab#accumulate} (any codec);
     * latent int8 slabs sum into the transposed accumulator instead ({@link IntSlab#accumulateColumns}),
     * which is turned back (the same floats) when a slab of another kind follows and at the end.
     */
    private void valueSums(PagedKvCache cache, int layer, int kvHead, int spanCount, int lanes, float[] out, int outOff) {
        int n = headDim * lanes;
        if (acc.length < n) {
            acc = new float[n];
            accColumns = new float[n];
        }
        java.util.Arrays.fill(acc, 0, n, 0f);
        java.util.Arrays.fill(accColumns, 0, n, 0f);
        boolean columns = false;
        int bt = cache.blockTokens();
        for (int i = 0; i < spanCount; i++) {
            int first = spans[3 * i] * bt;
            int from = spans[3 * i + 1];
            int end = spans[3 * i + 2];
            HeadSlab s = cache.slab(spans[3 * i], layer, kvHead);
            boolean columnar = s instanceof IntSlab is && is.columnar();
            if (columnar != columns) {
                transpose(columns ? accColumns : acc, columns ? acc : accColumns, columns ? headDim : lanes, columns ? lanes : headDim);
                columns = columnar;
            }
            if (columnar) {
                ((IntSlab) s).accumulateColumns(att, first, from - first, end - first, accColumns, lanes);
            } else {
                s.accumulate(att, first, from - first, end - first, acc, lanes);
            }
            bytesRead += s.bytes() * (end - from) / s.tokens();
        }
        if (columns) {
            transpose(accColumns, acc, headDim, lanes);
        }
        reduceLanes(acc, lanes, headDim, out, outOff);
    }

    /** {@code to[c * rows + r] = from[r * cols + c]}: a {@code rows x cols} matrix transposed. */
    private static void transpose(float[] from, float[] to, int rows, int cols) {
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                to[c * rows + r] = from[r * cols + c];
            }
        }
    }

    /** Value-sum lanes of an attention row in {@code order}: 64 (ggml's vec_dot) or 16 (tinyBLAS). */
    public static int lanes(DotOrder order) {
        return order == DotOrder.VEC_DOT ? 64 : 16;
    }

    /** {@link Kernels#maskedSoftmax}: llama.cpp's softmax of the visible scores {@code [0, a)} and {@code [b, len)} of {@code att}. */
    public static void softmax(float[] att, int len, int a, int b, float max) {
        Kernels.get().maskedSoftmax(att, len, a, b, max);
    }

    /**
     * {@code out[outOff + i]} = the lanes {@code acc[lane * headDim + i]} (filled by
     * {@link HeadSlab#accumulate}) added up as {@link CpuMath#reduce64} (64 lanes) or
     * {@link CpuMath#reduce16} (16) do, for all i at once (float addition commutes, so only the
     * grouping matters). Destroys {@code acc}.
     */
    public static void reduceLanes(float[] acc, int lanes, int hd, float[] out, int outOff) {
        Kernels.get().reduceLanes(acc, lanes, hd, out, outOff);
    }
}
