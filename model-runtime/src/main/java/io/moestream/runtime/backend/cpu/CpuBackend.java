package io.moestream.runtime.backend.cpu;

import io.moestream.runtime.backend.AttentionBatch;
import io.moestream.runtime.backend.Backend;
import io.moestream.runtime.backend.KvLayout;
import io.moestream.runtime.backend.KvPool;
import io.moestream.runtime.backend.Op;
import io.moestream.runtime.backend.RopeSpec;
import io.moestream.runtime.backend.RouterSpec;
import io.moestream.runtime.backend.Tensor;
import io.moestream.runtime.backend.WeightHandle;
import io.moestream.runtime.gguf.GgmlType;
import io.moestream.runtime.gguf.GgufTensor;
import io.moestream.runtime.kernel.DotOrder;
import io.moestream.runtime.kv.CompressedAttention;
import io.moestream.runtime.kv.HeadSlab;
import io.moestream.runtime.kv.KvCodec;
import io.moestream.runtime.model.ModelConfig;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * The reference backend: scalar Java over heap arrays, weights read in place from the mapped file.
 * Each op follows the CPU {@code Engine}'s arithmetic (same summation order where it has one), so
 * a forward pass on this backend reproduces the engine; the CUDA backend is tested against it.
 */
public final class CpuBackend implements Backend {

    /** Below this many multiply-adds a matmul stays on the calling thread. */
    private static final long PARALLEL_THRESHOLD = 1 << 18;

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public boolean supports(Op op, GgmlType weightType) {
        return weightType == null || weightType.computable();
    }

    @Override
    public boolean supports(KvCodec codec) {
        return true;
    }

    // ---- memory ------------------------------------------------------------------------------

    @Override
    public WeightHandle upload(String key, GgufTensor tensor) {
        if (!tensor.type().computable()) {
            throw new IllegalArgumentException("tensor '" + tensor.name() + "' has type " + tensor.type()
                    + ", which the CPU backend cannot compute with (F32, F16, BF16, Q8_0, Q4_0)");
        }
        return new CpuWeight(tensor);
    }

    @Override
    public Tensor allocate(Tensor.DType dtype, int rows, int cols) {
        return CpuTensor.allocate(dtype, rows, cols);
    }

    @Override
    public void write(Tensor t, float[] src) {
        CpuTensor c = f32(t);
        System.arraycopy(src, 0, c.f, 0, c.rows * c.cols);
    }

    @Override
    public void write(Tensor t, int[] src) {
        CpuTensor c = i32(t);
        System.arraycopy(src, 0, c.i, 0, c.rows * c.cols);
    }

    @Override
    public void read(Tensor t, float[] dst) {
        CpuTensor c = f32(t);
        System.arraycopy(c.f, 0, dst, 0, c.rows * c.cols);
    }

    @Override
    public void read(Tensor t, int[] dst) {
        CpuTensor c = i32(t);
        System.arraycopy(c.i, 0, dst, 0, c.rows * c.cols);
    }

    @Override
    public KvPool allocateKv(KvLayout layout, int blocks, int openBlocks) {
        return new CpuKvPool(layout, blocks, openBlocks);
    }

    @Override
    public void writeKvBlock(KvPool pool, int block, byte[] bytes) {
        CpuKvPool p = pool(pool);
        KvLayout l = p.layout;
        checkSize(bytes, l.blockBytes(), "sealed");
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        for (int layer = 0; layer < l.layers(); layer++) {
            for (int h = 0; h < l.kvHeads(); h++) {
                p.setSealed(block, layer, h, HeadSlab.readSealed(b, l.codec(), l.blockTokens(), l.headDim()));
            }
        }
    }

    @Override
    public byte[] readKvBlock(KvPool pool, int block) {
        CpuKvPool p = pool(pool);
        KvLayout l = p.layout;
        ByteBuffer b = ByteBuffer.allocate(Math.toIntExact(l.blockBytes())).order(ByteOrder.LITTLE_ENDIAN);
        for (int layer = 0; layer < l.layers(); layer++) {
            for (int h = 0; h < l.kvHeads(); h++) {
                p.sealed(block, layer, h).write(b);
            }
        }
        return b.array();
    }

    @Override
    public void writeOpenKvBlock(KvPool pool, int openBlock, byte[] bytes) {
        CpuKvPool p = pool(pool);
        KvLayout l = p.layout;
        checkSize(bytes, l.openBlockBytes(), "open");
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        int n = l.blockTokens() * l.headDim();
        float[] k = new float[n];
        float[] v = new float[n];
        for (int layer = 0; layer < l.layers(); layer++) {
            for (int h = 0; h < l.kvHeads(); h++) {
                b.asFloatBuffer().get(k);
                b.position(b.position() + 4 * n);
                b.asFloatBuffer().get(v);
                b.position(b.position() + 4 * n);
                HeadSlab.F32Slab s = p.open(openBlock, layer, h);
                for (int t = 0; t < l.blockTokens(); t++) {
                    s.put(t, k, t * l.headDim(), v, t * l.headDim());
                }
            }
        }
    }

    @Override
    public byte[] readOpenKvBlock(KvPool pool, int openBlock) {
        CpuKvPool p = pool(pool);
        KvLayout l = p.layout;
        ByteBuffer b = ByteBuffer.allocate(Math.toIntExact(l.openBlockBytes())).order(ByteOrder.LITTLE_ENDIAN);
        for (int layer = 0; layer < l.layers(); layer++) {
            for (int h = 0; h < l.kvHeads(); h++) {
                p.open(openBlock, layer, h).write(b); // an open slab counts all B positions
            }
        }
        return b.array();
    }

    private static void checkSize(byte[] bytes, long expected, String kind) {
        if (bytes.length != expected) {
            throw new IllegalArgumentException(kind + " KV block has " + bytes.length + " bytes, the layout needs " + expected);
        }
    }

    // ---- ops ---------------------------------------------------------------------------------

    @Override
    public void embed(WeightHandle table, Tensor tokens, Tensor out) {
        CpuWeight w = weight(table);
        CpuTensor ids = i32(tokens);
        CpuTensor o = f32(out);
        for (int r = 0; r < ids.rows; r++) {
            int id = ids.i[r];
            if (id < 0 || id >= w.rows) {
                throw new IllegalArgumentException("token id " + id + " outside 0.." + (w.rows - 1));
            }
            w.mats[0].dequantizeRow(id, o.f, r * o.cols);
        }
    }

    @Override
    public void matmul(WeightHandle wh, Tensor x, Tensor out) {
        CpuWeight w = weight(wh);
        CpuTensor in = f32(x);
        CpuTensor o = f32(out);
        checkCols(w, in, o);
        Activations a = Activations.of(w.type, in, in.rows);
        int n = in.rows;
        rowsParallel(w.rows, (long) w.cols * n, r -> {
            for (int b = 0; b < n; b++) {
                o.f[b * o.cols + r] = a.dot(w, 0, r, b);
            }
        });
    }

    @Override
    public void expertMatmul(WeightHandle wh, Tensor x, Tensor idsT, Tensor out) {
        CpuWeight w = weight(wh);
        CpuTensor in = f32(x);
        CpuTensor ids = i32(idsT);
        CpuTensor o = f32(out);
        int k = ids.cols;
        int assignments = ids.rows * k;
        boolean perAssignment = in.rows == assignments;
        if (!perAssignment && in.rows != ids.rows) {
            throw new IllegalArgumentException("expert x has " + in.rows + " rows; expected " + ids.rows + " tokens or " + assignments + " assignments");
        }
        checkCols(w, in, o);
        Activations a = Activations.of(w.type, in, in.rows);
        rowsParallel(w.rows, (long) w.cols * assignments, r -> {
            for (int as = 0; as < assignments; as++) {
                o.f[as * o.cols + r] = a.dot(w, ids.i[as], r, perAssignment ? as : as / k);
            }
        });
    }

    @Override
    public void rmsnorm(Tensor x, WeightHandle weight, float eps, Tensor out) {
        CpuTensor in = f32(x);
        CpuTensor o = f32(out);
        float[] wv = vector(weight);
        int g = wv.length;
        if (in.cols % g != 0) {
            throw new IllegalArgumentException("rmsnorm group " + g + " does not divide row width " + in.cols);
        }
        for (int base = 0; base < in.rows * in.cols; base += g) {
            float ss = 0;
            for (int i = 0; i < g; i++) {
                ss += in.f[base + i] * in.f[base + i];
            }
            float inv = (float) (1.0 / Math.sqrt(ss / g + eps));
            for (int i = 0; i < g; i++) {
                o.f[base + i] = in.f[base + i] * inv * wv[i];
            }
        }
    }

    @Override
    public void rope(Tensor x, Tensor positions, RopeSpec spec) {
        CpuTensor v = f32(x);
        CpuTensor pos = i32(positions);
        int half = spec.ropeDims() / 2;
        float thetaScale = spec.thetaScale();
        float[] cos = new float[half];
        float[] sin = new float[half];
        int heads = v.cols / spec.headDim();
        for (int r = 0; r < v.rows; r++) {
            float theta = pos.i[r];
            for (int i = 0; i < half; i++) {
                cos[i] = (float) Math.cos(theta);
                sin[i] = (float) Math.sin(theta);
                theta *= thetaScale;
            }
            for (int h = 0; h < heads; h++) {
                int base = r * v.cols + h * spec.headDim();
                for (int i = 0; i < half; i++) {
                    int a = spec.type() == ModelConfig.RopeType.NORM ? base + 2 * i : base + i;
                    int b = spec.type() == ModelConfig.RopeType.NORM ? a + 1 : base + i + half;
                    float x0 = v.f[a];
                    float x1 = v.f[b];
                    v.f[a] = x0 * cos[i] - x1 * sin[i];
                    v.f[b] = x0 * sin[i] + x1 * cos[i];
                }
            }
        }
    }

    @Override
    public void kvStore(KvPool pool, int layer, Tensor k, Tensor v, Tensor slots) {
        CpuKvPool p = pool(pool);
        KvLayout l = p.layout;
        CpuTensor kt = f32(k);
        CpuTensor vt = f32(v);
        CpuTensor s = i32(slots);
        int bt = l.blockTokens();
        int hd = l.headDim();
        for (int r = 0; r < s.rows; r++) {
            int slot = s.i[r];
            for (int h = 0; h < l.kvHeads(); h++) {
                p.open(slot / bt, layer, h).put(slot % bt, kt.f, r * kt.cols + h * hd, vt.f, r * vt.cols + h * hd);
            }
        }
    }

    @Override
    public void kvSeal(KvPool pool, int layer, Tensor seals) {
        CpuKvPool p = pool(pool);
        KvLayout l = p.layout;
        CpuTensor s = i32(seals);
        for (int r = 0; r < s.rows; r++) {
            int open = s.i[r * 2];
            int sealed = s.i[r * 2 + 1];
            for (int h = 0; h < l.kvHeads(); h++) {
                p.setSealed(sealed, layer, h, HeadSlab.seal(p.open(open, layer, h), l.codec()));
            }
        }
    }

    /**
     * The CPU engine's attention ({@code CompressedAttention}, all heads retrieval) over the pool's
     * slabs, in the same order: scores block by block, max, llama.cpp's softmax
     * ({@link CompressedAttention#softmax}), then the value sums block by block in lanes, 16 for a
     * row whose sequence has more rows in the batch (a prefill chunk), 64 for a lone row. With the
     * same q, k and v and the same chunks it gives the engine's bits.
     */
    @Override
    public void attention(Tensor qT, KvPool pool, int layer, AttentionBatch batch, Tensor out) {
        CpuKvPool p = pool(pool);
        KvLayout l = p.layout;
        CpuTensor q = f32(qT);
        CpuTensor o = f32(out);
        CpuTensor rowSeq = i32(batch.rowSeq());
        CpuTensor rowLen = i32(batch.rowLen());
        CpuTensor tables = i32(batch.blockTables());
        CpuTensor rowOpen = i32(batch.rowOpen());
        int headDim = l.headDim();
        int heads = q.cols / headDim;
        int group = heads / l.kvHeads();
        int bt = l.blockTokens();
        float scale = 1f / (float) Math.sqrt(headDim);
        float[] att = new float[(Math.max(1, batch.maxLen()) + 15) & ~15];
        float[] scratch = new float[Math.max(headDim, 64)];
        float[] acc = new float[64 * headDim];
        Map<Integer, Integer> rowsPerSequence = new HashMap<>();
        for (int r = 0; r < q.rows; r++) {
            rowsPerSequence.merge(rowSeq.i[r], 1, Integer::sum);
        }
        for (int r = 0; r < q.rows; r++) {
            int lanes = CompressedAttention.lanes(rowsPerSequence.get(rowSeq.i[r]) > 1 ? DotOrder.TINYBLAS : DotOrder.VEC_DOT);
            int len = rowLen.i[r];
            int cur = (len - 1) / bt;
            int table = rowSeq.i[r] * tables.cols;
            HeadSlab[] slabs = new HeadSlab[cur + 1];
            for (int h = 0; h < heads; h++) {
                int kvh = h / group;
                for (int bi = 0; bi < cur; bi++) {
                    slabs[bi] = p.sealed(tables.i[table + bi], layer, kvh);
                }
                slabs[cur] = p.open(rowOpen.i[r], layer, kvh);
                int qOff = r * q.cols + h * headDim;
                float max = Float.NEGATIVE_INFINITY;
                for (int bi = 0; bi <= cur; bi++) {
                    int first = bi * bt;
                    int end = Math.min(len, first + bt);
                    slabs[bi].scores(q.f, qOff, 0, end - first, scale, att, first, scratch);
                    for (int t = first; t < end; t++) {
                        max = Math.max(max, att[t]);
                    }
                }
                CompressedAttention.softmax(att, len, len, len, max);
                Arrays.fill(acc, 0, lanes * headDim, 0f);
                for (int bi = 0; bi <= cur; bi++) {
                    int first = bi * bt;
                    int end = Math.min(len, first + bt);
                    slabs[bi].accumulate(att, first, 0, end - first, acc, lanes);
                }
                CompressedAttention.reduceLanes(acc, lanes, headDim, o.f, r * o.cols + h * headDim);
            }
        }
    }

    @Override
    public void swiglu(Tensor gate, Tensor up, Tensor out) {
        CpuTensor g = f32(gate);
        CpuTensor u = f32(up);
        CpuTensor o = f32(out);
        for (int i = 0; i < g.rows * g.cols; i++) {
            float v = g.f[i];
            o.f[i] = v / (1f + (float) Math.exp(-v)) * u.f[i];
        }
    }

    @Override
    public void add(Tensor acc, Tensor d) {
        CpuTensor a = f32(acc);
        CpuTensor b = f32(d);
        for (int i = 0; i < a.rows * a.cols; i++) {
            a.f[i] += b.f[i];
        }
    }

    @Override
    public void addBias(Tensor x, WeightHandle bias) {
        CpuTensor a = f32(x);
        float[] b = vector(bias);
        if (b.length != a.cols) {
            throw new IllegalArgumentException("bias of " + b.length + " values for rows of " + a.cols);
        }
        for (int r = 0; r < a.rows; r++) {
            for (int i = 0; i < a.cols; i++) {
                a.f[r * a.cols + i] += b[i];
            }
        }
    }

    @Override
    public void addGated(Tensor acc, Tensor d, Tensor gate) {
        CpuTensor a = f32(acc);
        CpuTensor b = f32(d);
        CpuTensor g = f32(gate);
        for (int r = 0; r < a.rows; r++) {
            float s = (float) (1.0 / (1.0 + Math.exp(-g.f[r * g.cols])));
            for (int i = 0; i < a.cols; i++) {
                a.f[r * a.cols + i] += s * b.f[r * b.cols + i];
            }
        }
    }

    @Override
    public void route(Tensor logits, WeightHandle bias, RouterSpec spec, Tensor ids, Tensor weights) {
        CpuTensor lg = f32(logits);
        CpuTensor id = i32(ids);
        CpuTensor wt = f32(weights);
        float[] b = bias == null ? null : vector(bias);
        int e = spec.experts();
        int k = spec.k();
        float[] row = new float[e];
        int[] chosen = new int[k];
        float[] w = new float[k];
        for (int t = 0; t < lg.rows; t++) {
            System.arraycopy(lg.f, t * lg.cols, row, 0, e);
            Routing.route(row, b, spec, chosen, w);
            System.arraycopy(chosen, 0, id.i, t * id.cols, k);
            System.arraycopy(w, 0, wt.f, t * wt.cols, k);
        }
    }

    @Override
    public void combine(Tensor expertOut, Tensor weights, Tensor out) {
        CpuTensor eo = f32(expertOut);
        CpuTensor w = f32(weights);
        CpuTensor o = f32(out);
        int k = w.cols;
        for (int t = 0; t < o.rows; t++) {
            int oOff = t * o.cols;
            Arrays.fill(o.f, oOff, oOff + o.cols, 0f);
            for (int j = 0; j < k; j++) {
                float a = w.f[t * k + j];
                int eOff = (t * k + j) * eo.cols;
                for (int i = 0; i < o.cols; i++) {
                    o.f[oOff + i] += a * eo.f[eOff + i];
                }
            }
        }
    }

    @Override
    public void gather(Tensor src, Tensor rows, Tensor out) {
        CpuTensor s = f32(src);
        CpuTensor r = i32(rows);
        CpuTensor o = f32(out);
        for (int i = 0; i < r.rows; i++) {
            System.arraycopy(s.f, r.i[i] * s.cols, o.f, i * o.cols, s.cols);
        }
    }

    @Override
    public void synchronize() {}

    @Override
    public void close() {}

    // ---- helpers -----------------------------------------------------------------------------

    private static void rowsParallel(int rows, long workPerRow, java.util.function.IntConsumer body) {
        if (rows * workPerRow < PARALLEL_THRESHOLD) {
            for (int r = 0; r < rows; r++) {
                body.accept(r);
            }
        } else {
            IntStream.range(0, rows).parallel().forEach(body);
        }
    }

    private static void checkCols(CpuWeight w, CpuTensor in, CpuTensor o) {
        if (in.cols != w.cols || o.cols != w.rows) {
            throw new IllegalArgumentException(w.name + " is (" + w.rows + ", " + w.cols + "); x has " + in.cols
                    + " cols and out " + o.cols);
        }
    }

    private static float[] vector(WeightHandle h) {
        CpuWeight w = weight(h);
        float[] v = new float[w.cols];
        w.mats[0].dequantizeRow(0, v, 0);
        return v;
    }

    private static CpuWeight weight(WeightHandle h) {
        if (h instanceof CpuWeight w) {
            return w;
        }
        throw new IllegalArgumentException(h + " was not uploaded to the CPU backend");
    }

    private static CpuKvPool pool(KvPool p) {
        if (p instanceof CpuKvPool c) {
            return c;
        }
        throw new IllegalArgumentException(p + " is not a CPU KV pool");
    }

    private static CpuTensor f32(Tensor t) {
        return cpu(t, Tensor.DType.F32);
    }

    private static CpuTensor i32(Tensor t) {
        return cpu(t, Tensor.DType.I32);
    }

    private static CpuTensor cpu(Tensor t, Tensor.DType dtype) {
        if (!(t instanceof CpuTensor c)) {
            throw new IllegalArgumentException(t + " is not a CPU tensor");
        }
        if (c.dtype != dtype) {
            throw new IllegalArgumentException(t + " should be " + dtype);
        }
        return c;
    }
}
