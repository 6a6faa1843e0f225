package io.moestream.runtime.model;

import io.moestream.runtime.gguf.Float16;
import io.moestream.runtime.gguf.GgmlType;
import io.moestream.runtime.gguf.GgufFormatException;
import io.moestream.runtime.gguf.GgufTensor;
import io.moestream.runtime.kernel.Activation;
import io.moestream.runtime.kernel.DotOrder;
import io.moestream.runtime.kernel.KQuantBlocks;
import io.moestream.runtime.kernel.KQuantKernels;
import io.moestream.runtime.kernel.Kernels;
import io.moestream.runtime.kernel.MatmulPool;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A read-only {@code [rows][cols]} weight matrix read in place from a memory-mapped tensor: row r
 * holds the weights of output r, so {@code y = W x} is a dot product per row. Quantized rows are
 * multiplied block by block while they are read, never dequantized; the one copy is a Q4_0, Q4_K or Q5_K
 * matrix's rows in the native kernels' batch-1 layout ({@link Kernels#repackQ4_0},
 * {@link KQuantKernels#repack}), made at its first single-activation product.
 *
 * <p>{@link #matmul} follows llama.cpp's numerics: the activation is prepared once per call
 * ({@link Activation}: quantized to Q8_0 for Q8_0/Q4_0 weights, rounded to F16/BF16 for those
 * weights) and every row is an integer-block or float dot from {@link Kernels}; rows are split in
 * chunks over the shared {@link MatmulPool}. Each row's result does not depend on the split, so
 * results do not depend on the thread count. {@link #dot} is the plain float path (no activation
 * rounding), kept as the reference.
 */
public final class WeightMatrix {

    /** Rows per task of a repacked matrix are a multiple of this: the copies' groups (8 rows for Q4_0, 16 for Q4_K and Q5_K). */
    private static final int REPACKED_TASK_ROWS = 16;
    /** Below this many weights a matmul runs on the calling thread (waking the pool costs more). */
    private static final long PARALLEL_THRESHOLD = 1 << 20;

    private final String name;
    private final GgmlType type;
    private final ByteBuffer data;
    private final long baseOffset;
    private final int rows;
    private final int cols;
    private final int rowBytes;
    /** The kernels' copy of Q4_0, Q4_K or Q5_K rows for single-activation products (see {@link #repackedFor}). */
    private volatile Repacked repacked;

    private record Repacked(Kernels by, ByteBuffer rows) {
    }

    private WeightMatrix(String name, GgmlType type, ByteBuffer data, long baseOffset, int rows, int cols) {
        this.name = name;
        this.type = type;
        this.data = data;
        this.baseOffset = baseOffset;
        this.rows = rows;
        this.cols = cols;
        this.rowBytes = (int) type.bytesFor(cols);
    }

    /** A 2-D tensor {@code [cols, rows]} (GGUF order) as a matrix. */
    public static WeightMatrix of(GgufTensor t) throws GgufFormatException {
        long[] ne = t.ne();
        if (ne.length > 2) {
            throw new GgufFormatException("tensor '" + t.name() + "' " + t.shape() + " is not a matrix");
        }
        checkComputable(t);
        return new WeightMatrix(t.name(), t.type(), t.bytes(), 0, ne.length == 2 ? (int) ne[1] : 1, (int) ne[0]);
    }

    /** The expert slabs of a 3-D tensor {@code [cols, rows, n_expert]}: expert e is a contiguous matrix. */
    public static WeightMatrix[] experts(GgufTensor t) throws GgufFormatException {
        long[] ne = t.ne();
        if (ne.length != 3) {
            throw new GgufFormatException("tensor '" + t.name() + "' " + t.shape() + " should be 3-D [in, out, experts]");
        }
        checkComputable(t);
        WeightMatrix[] out = new WeightMatrix[(int) ne[2]];
        long slab = t.type().bytesFor(ne[0] * ne[1]);
        for (int e = 0; e < out.length; e++) {
            out[e] = new WeightMatrix(t.name() + "[" + e + "]", t.type(), t.bytes(), e * slab, (int) ne[1], (int) ne[0]);
        }
        return out;
    }

    private static void checkComputable(GgufTensor t) throws GgufFormatException {
        if (!t.type().computable()) {
            throw new GgufFormatException("tensor '" + t.name() + "' has type " + t.type()
                    + ", which this runtime cannot compute with yet (supported: F32, F16, BF16, Q8_0, Q4_0, Q5_0, "
                    + "Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, MXFP4)");
        }
    }

    public String name() {
        return name;
    }

    public GgmlType type() {
        return type;
    }

    public int rows() {
        return rows;
    }

    public int cols() {
        return cols;
    }

    /** {@code out[r] = W[r] . x} for every row, with llama.cpp's activation rounding (see the class comment), in decode order. */
    public void matmul(float[] x, float[] out) {
        matmul(x, out, DotOrder.VEC_DOT);
    }

    /**
     * {@code out[r] = W[r] . x} for every row; F32/F16 rows are summed in {@code order} where
     * llama.cpp's tinyBLAS would take the matrix (rows a multiple of 4, columns of 16), else in
     * ggml's {@code vec_dot} order.
     */
    public void matmul(float[] x, float[] out, DotOrder order) {
        Products p = Products.local();
        p.add(this, new float[][] {x}, new float[][] {out}, 1, new DotOrder[] {order});
        p.run();
    }

    /**
     * Batched {@link #matmul}: {@code outs[i][r] = W[r] . xs[i]} for i in [0, n). Each row is read
     * once for all n activations (batched decoding reads every weight once per step); the results
     * equal n separate matmuls up to float summation order.
     */
    public void matmul(float[][] xs, float[][] outs, int n) {
        matmul(xs, outs, n, null);
    }

    /**
     * Batched {@link #matmul(float[], float[], DotOrder)}: row i of the activations is summed in
     * {@code orders[i]} (all in decode order when {@code orders} is null).
     */
    public void matmul(float[][] xs, float[][] outs, int n, DotOrder[] orders) {
        Products p = Products.local();
        p.add(this, xs, outs, n, orders);
        p.run();
    }

    /**
     * Several matrix products run as one job of the {@link MatmulPool}: one wake-up of the workers
     * and one wait for the last chunk instead of one per matrix (a decode step has a handful per
     * layer: q, k and v; every chosen expert's gate and up; every expert's down). Activations are
     * prepared once per distinct input and weight type. Each output row is computed exactly as by
     * a single {@link #matmul}, so grouping never changes a result.
     *
     * <p>Not thread-safe; {@link #local()} gives each thread its own.
     */
    public static final class Products {

        private static final ThreadLocal<Products> LOCAL = ThreadLocal.withInitial(Products::new);
        /**
         * The job's last chunks are cut in pieces, so that the threads finish together: a thread
         * that takes the last whole chunk would otherwise leave the others waiting for up to a
         * chunk's time (~20 us at batch 1), every job. A constant, not the thread count, so the
         * split (and so each row's kernel call) is the same for every pool.
         */
        private static final int TAIL_TASKS = 2;
        private static final int TAIL_PIECES = 4;
        private WeightMatrix[] matrices = new WeightMatrix[8];
        private float[][][] outs = new float[8][][];
        private Activation[][] acts = new Activation[8][];
        private int[] counts = new int[8];
        private int[] chunkRows = new int[8];
        /** Activations per task, and row chunks per activation chunk, of each product. */
        private int[] chunkActs = new int[8];
        private int[] rowTasks = new int[8];
        private ByteBuffer[] repackedRows = new ByteBuffer[8];
        /** First task index of each product, plus the total at index {@code size}. */
        private int[] firstTask = new int[9];
        /** Where the job's last {@link #TAIL_TASKS} chunks begin: past it, tasks are their pieces. */
        private int tailStart;
        private final int[] pieceProduct = new int[TAIL_TASKS * TAIL_PIECES];
        private final int[] pieceFrom = new int[TAIL_TASKS * TAIL_PIECES];
        private final int[] pieceTo = new int[TAIL_TASKS * TAIL_PIECES];
        private final int[] pieceAct = new int[TAIL_TASKS * TAIL_PIECES];
        private int size;
        private final List<Activation[]> prepared = new ArrayList<>();
        private final List<Object> preparedKeys = new ArrayList<>();
        private int pooled;

        /** This thread's (empty) set. */
        public static Products local() {
            Products p = LOCAL.get();
            p.clear();
            return p;
        }

        private void clear() {
            Arrays.fill(matrices, 0, size, null);
            Arrays.fill(outs, 0, size, null);
            Arrays.fill(acts, 0, size, null);
            Arrays.fill(repackedRows, 0, size, null);
            size = 0;
            preparedKeys.clear();
        }

        /** Adds {@code outs[i] = w . xs[i]} for i in [0, n), row i summed in {@code orders[i]} (decode order when null). */
        public Products add(WeightMatrix w, float[][] xs, float[][] outs, int n, DotOrder[] orders) {
            if (n == 0) {
                return this;
            }
            if (size == matrices.length) {
                int cap = size * 2;
                matrices = Arrays.copyOf(matrices, cap);
                this.outs = Arrays.copyOf(this.outs, cap);
                acts = Arrays.copyOf(acts, cap);
                counts = Arrays.copyOf(counts, cap);
                chunkRows = Arrays.copyOf(chunkRows, cap);
                chunkActs = Arrays.copyOf(chunkActs, cap);
                rowTasks = Arrays.copyOf(rowTasks, cap);
                repackedRows = Arrays.copyOf(repackedRows, cap);
                firstTask = Arrays.copyOf(firstTask, cap + 1);
            }
            matrices[size] = w;
            this.outs[size] = outs;
            counts[size] = n;
            acts[size] = activations(w, xs, n, orders);
            Kernels k = Kernels.get();
            repackedRows[size] = n == 1 ? w.repackedFor(k) : null;
            int acts = Math.min(n, k.taskActivations());
            long perRow = (long) w.cols * acts;
            chunkActs[size] = acts;
            int rowsPerTask = (int) Math.max(1, Math.min(w.rows, k.taskWork(acts) / perRow));
            if (repackedRows[size] != null && rowsPerTask > REPACKED_TASK_ROWS) {
                rowsPerTask -= rowsPerTask % REPACKED_TASK_ROWS; // every task starts on a group of the copy
            }
            chunkRows[size] = rowsPerTask;
            rowTasks[size] = (w.rows + chunkRows[size] - 1) / chunkRows[size];
            firstTask[size + 1] = firstTask[size] + rowTasks[size] * ((n + acts - 1) / acts);
            size++;
            return this;
        }

        /** The inputs prepared for {@code w}'s weight type, shared with an earlier product of the same inputs. */
        private Activation[] activations(WeightMatrix w, float[][] xs, int n, DotOrder[] orders) {
            DotOrder[] effective = new DotOrder[n];
            for (int i = 0; i < n; i++) {
                effective[i] = w.effective(orders == null ? DotOrder.VEC_DOT : orders[i]);
            }
            List<Object> key = List.of(w.type, w.cols, n, Arrays.asList(effective), new Identity(xs, n));
            int at = preparedKeys.indexOf(key);
            if (at >= 0) {
                return prepared.get(at);
            }
            int slot = preparedKeys.size();
            preparedKeys.add(key);
            if (prepared.size() <= slot) {
                prepared.add(new Activation[0]);
            }
            Activation[] a = prepared.get(slot);
            if (a.length < n) {
                a = Arrays.copyOf(a, n);
                for (int i = 0; i < n; i++) {
                    if (a[i] == null) {
                        a[i] = new Activation();
                    }
                }
                prepared.set(slot, a);
            }
            for (int i = 0; i < n; i++) {
                a[i].prepare(xs[i], 0, w.cols, w.type, effective[i]);
            }
            markGemmRows(w.type, a, n, orders);
            return a;
        }

        /**
         * llama.cpp multiplies the repacked types (Q4_K, Q2_K) with its gemm kernel for the first
         * {@code m - m % 4} rows of an m-row prefill MUL_MAT and with gemv for the rest (and for
         * decode rows and expert products); the two group the float sums differently. Here m is each
         * sequence's chunk, not the whole step ({@link DotOrder#TINYBLAS_TAIL}), so that a row's sums
         * are those of its sequence run alone.
         */
        private static void markGemmRows(GgmlType type, Activation[] a, int n, DotOrder[] orders) {
            if ((type != GgmlType.Q4_K && type != GgmlType.Q2_K) || orders == null) {
                return;
            }
            for (int i = 0; i < n; i++) {
                a[i].gemmOrder(orders[i] == DotOrder.TINYBLAS);
            }
        }

        /** Runs every product added since {@link #local()}, split over the pool when large enough. */
        public void run() {
            int tasks = splitTail();
            long work = 0;
            for (int p = 0; p < size; p++) {
                work += (long) matrices[p].rows * matrices[p].cols * counts[p];
            }
            try {
                if (work < PARALLEL_THRESHOLD) {
                    for (int t = 0; t < tasks; t++) {
                        task(t);
                    }
                } else {
                    pooled++;
                    MatmulPool.get().run(tasks, this::task);
                }
            } finally {
                clear();
            }
        }

        /**
         * Cuts each of the last {@link #TAIL_TASKS} chunks into up to {@link #TAIL_PIECES} pieces of
         * a multiple of 8 rows, 16 for a repacked copy (so a kernel's row groups start where they did
         * in the chunk); returns the number of tasks.
         */
        private int splitTail() {
            int chunks = firstTask[size];
            tailStart = Math.max(0, chunks - TAIL_TASKS);
            int pieces = 0;
            for (int t = tailStart; t < chunks; t++) {
                int p = product(t);
                int local = t - firstTask[p];
                int from = local % rowTasks[p] * chunkRows[p];
                int to = Math.min(matrices[p].rows, from + chunkRows[p]);
                int act = local / rowTasks[p] * chunkActs[p];
                int align = repackedRows[p] != null ? REPACKED_TASK_ROWS : 8;
                int step = Math.max(align, ((to - from + TAIL_PIECES - 1) / TAIL_PIECES + align - 1) / align * align);
                for (int r = from; r < to; r += step) {
                    pieceProduct[pieces] = p;
                    pieceFrom[pieces] = r;
                    pieceTo[pieces] = Math.min(to, r + step);
                    pieceAct[pieces++] = act;
                }
            }
            return tailStart + pieces;
        }

        private int product(int t) {
            int p = 0;
            while (firstTask[p + 1] <= t) {
                p++;
            }
            return p;
        }

        /** Pool jobs run so far by this thread's set (tests). */
        int pooledJobs() {
            return pooled;
        }

        private void task(int t) {
            int p;
            int from;
            int to;
            int firstAct;
            if (t < tailStart) {
                p = product(t);
                int local = t - firstTask[p];
                from = local % rowTasks[p] * chunkRows[p];
                to = Math.min(matrices[p].rows, from + chunkRows[p]);
                firstAct = local / rowTasks[p] * chunkActs[p];
            } else {
                int i = t - tailStart;
                p = pieceProduct[i];
                from = pieceFrom[i];
                to = pieceTo[i];
                firstAct = pieceAct[i];
            }
            // consecutive tasks share their activations (a thread packs them once for its run of tasks)
            WeightMatrix w = matrices[p];
            int n = Math.min(chunkActs[p], counts[p] - firstAct);
            Kernels k = Kernels.get();
            Activation[] a = acts[p];
            float[][] out = outs[p];
            if (KQuantKernels.handles(w.type)) {
                if (counts[p] == 1) {
                    ByteBuffer r = repackedRows[p];
                    int group = KQuantKernels.repackedGroupRows();
                    int end = Math.min(to, w.rows / group * group);
                    if (r != null && from % group == 0 && end - from >= group) {
                        int grouped = (end - from) / group * group;
                        if (KQuantKernels.dotRowsRepacked(w.type, r, from, grouped, w.cols, a[0], out[0], from)) {
                            from += grouped;
                        }
                    }
                    if (from == to) {
                        return;
                    }
                    KQuantKernels.dotRows(w.type, w.data, w.rowOffset(from), w.rowBytes, to - from, w.cols, a[0], out[0], from);
                } else {
                    KQuantKernels.dotsRows(w.type, w.data, w.rowOffset(from), w.rowBytes, to - from, w.cols, a, firstAct, n, out, from);
                }
                return;
            }
            if (counts[p] == 1) {
                ByteBuffer r = repackedRows[p];
                int end = Math.min(to, w.rows / 8 * 8);
                if (r != null && from % 8 == 0 && end - from >= 8) {
                    int grouped = (end - from) / 8 * 8;
                    if (k.dotRowsRepacked(r, from, grouped, w.cols, a[0], out[0], from)) {
                        from += grouped;
                    }
                }
                if (from < to) {
                    k.dotRows(w.type, w.data, w.rowOffset(from), w.rowBytes, to - from, w.cols, a[0], out[0], from);
                }
            } else {
                k.dotsRows(w.type, w.data, w.rowOffset(from), w.rowBytes, to - from, w.cols, a, firstAct, n, out, from);
            }
        }

        /** Compares the first n rows of an input matrix by identity (the same buffers, not equal values). */
        private record Identity(float[][] xs, int n) {
            @Override
            public boolean equals(Object o) {
                if (!(o instanceof Identity other) || other.n != n) {
                    return false;
                }
                for (int i = 0; i < n; i++) {
                    if (xs[i] != other.xs[i]) {
                        return false;
                    }
                }
                return true;
            }

            @Override
            public int hashCode() {
                return n;
            }
        }
    }

    /**
     * Q4_0 rows copied into {@code k}'s single-activation layout ({@link Kernels#repackQ4_0}), or Q4_K
     * or Q5_K rows into the native K-quant kernels' ({@link KQuantKernels#repack}), made at the first
     * single-activation product and kept while {@code k} is the kernel set; null when the rows are
     * read in place. The copy is memory beside the mapping (about the matrix's
     * size), paid only by matrices that decode one activation at a time.
     */
    private ByteBuffer repackedFor(Kernels k) {
        if (type != GgmlType.Q4_0 && type != GgmlType.Q4_K && type != GgmlType.Q5_K) {
            return null;
        }
        Repacked r = repacked;
        if (r == null || r.by() != k) {
            synchronized (this) {
                r = repacked;
                if (r == null || r.by() != k) {
                    r = new Repacked(k, type == GgmlType.Q4_0 ? k.repackQ4_0(data, rowOffset(0), rowBytes, rows, cols)
                            : KQuantKernels.repack(type, data, rowOffset(0), rowBytes, rows, cols));
                    repacked = r;
                }
            }
        }
        return r.rows();
    }

    /** tinyBLAS takes a matrix only when its rows are a multiple of 4 (columns of 16: {@link Activation#prepare}). */
    private DotOrder effective(DotOrder order) {
        return rows % 4 == 0 ? order : DotOrder.VEC_DOT;
    }

    private int rowOffset(int row) {
        return (int) (baseOffset + (long) row * rowBytes);
    }

    /**
     * Plain float dot product of row {@code row} (dequantized on the fly) with
     * {@code x[xOff .. xOff+cols)}: no activation rounding, the reference path for tests.
     */
    public float dot(int row, float[] x, int xOff) {
        int off = Math.toIntExact(baseOffset + (long) row * rowBytes);
        switch (type) {
            case F32: return dotF32(off, x, xOff);
            case F16: return dotF16(off, x, xOff);
            case BF16: return dotBf16(off, x, xOff);
            case Q8_0: return dotQ8_0(off, x, xOff);
            case Q4_0: return dotQ4_0(off, x, xOff);
            default: return dotDequantized(row, x, xOff);
        }
    }

    /** Writes row {@code row} as floats into {@code out[outOff .. outOff+cols)}. */
    public void dequantizeRow(int row, float[] out, int outOff) {
        int off = Math.toIntExact(baseOffset + (long) row * rowBytes);
        switch (type) {
            case F32 -> {
                for (int i = 0; i < cols; i++) {
                    out[outOff + i] = data.getFloat(off + 4 * i);
                }
            }
            case F16 -> {
                for (int i = 0; i < cols; i++) {
                    out[outOff + i] = Float16.toFloat(data.getShort(off + 2 * i));
                }
            }
            case BF16 -> {
                for (int i = 0; i < cols; i++) {
                    out[outOff + i] = Float16.bf16ToFloat(data.getShort(off + 2 * i));
                }
            }
            case Q8_0 -> {
                for (int b = 0; b < cols / 32; b++, off += 34) {
                    float d = Float16.toFloat(data.getShort(off));
                    for (int j = 0; j < 32; j++) {
                        out[outOff + b * 32 + j] = d * data.get(off + 2 + j);
                    }
                }
            }
            case Q4_0 -> {
                for (int b = 0; b < cols / 32; b++, off += 18) {
                    float d = Float16.toFloat(data.getShort(off));
                    for (int j = 0; j < 16; j++) {
                        int q = data.get(off + 2 + j) & 0xFF;
                        out[outOff + b * 32 + j] = d * ((q & 0xF) - 8);
                        out[outOff + b * 32 + j + 16] = d * ((q >>> 4) - 8);
                    }
                }
            }
            default -> {
                if (!KQuantBlocks.handles(type)) {
                    throw new IllegalStateException("unsupported weight type " + type);
                }
                byte[] r = new byte[rowBytes];
                data.get(off, r, 0, rowBytes);
                KQuantBlocks.dequantize(type, r, cols, out, outOff);
            }
        }
    }

    /** The block types without a dedicated reference loop: dequantize the row, then a float dot. */
    private float dotDequantized(int row, float[] x, int xOff) {
        float[] w = new float[cols];
        dequantizeRow(row, w, 0);
        float s = 0;
        for (int i = 0; i < cols; i++) {
            s += w[i] * x[xOff + i];
        }
        return s;
    }

    private float dotF32(int off, float[] x, int xOff) {
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int i = 0;
        for (; i + 3 < cols; i += 4) {
            int o = off + 4 * i;
            s0 += data.getFloat(o) * x[xOff + i];
            s1 += data.getFloat(o + 4) * x[xOff + i + 1];
            s2 += data.getFloat(o + 8) * x[xOff + i + 2];
            s3 += data.getFloat(o + 12) * x[xOff + i + 3];
        }
        for (; i < cols; i++) {
            s0 += data.getFloat(off + 4 * i) * x[xOff + i];
        }
        return (s0 + s1) + (s2 + s3);
    }

    private float dotF16(int off, float[] x, int xOff) {
        float s0 = 0, s1 = 0;
        int i = 0;
        for (; i + 1 < cols; i += 2) {
            s0 += Float16.toFloat(data.getShort(off + 2 * i)) * x[xOff + i];
            s1 += Float16.toFloat(data.getShort(off + 2 * i + 2)) * x[xOff + i + 1];
        }
        for (; i < cols; i++) {
            s0 += Float16.toFloat(data.getShort(off + 2 * i)) * x[xOff + i];
        }
        return s0 + s1;
    }

    private float dotBf16(int off, float[] x, int xOff) {
        float s = 0;
        for (int i = 0; i < cols; i++) {
            s += Float16.bf16ToFloat(data.getShort(off + 2 * i)) * x[xOff + i];
        }
        return s;
    }

    private float dotQ8_0(int off, float[] x, int xOff) {
        float sum = 0;
        for (int b = 0; b < cols / 32; b++, off += 34) {
            float d = Float16.toFloat(data.getShort(off));
            int xi = xOff + b * 32;
            float s0 = 0, s1 = 0;
            for (int j = 0; j < 32; j += 2) {
                s0 += data.get(off + 2 + j) * x[xi + j];
                s1 += data.get(off + 3 + j) * x[xi + j + 1];
            }
            sum += d * (s0 + s1);
        }
        return sum;
    }

    private float dotQ4_0(int off, float[] x, int xOff) {
        float sum = 0;
        for (int b = 0; b < cols / 32; b++, off += 18) {
            float d = Float16.toFloat(data.getShort(off));
            int xi = xOff + b * 32;
            float s = 0;
            for (int j = 0; j < 16; j++) {
                int q = data.get(off + 2 + j) & 0xFF;
                s += ((q & 0xF) - 8) * x[xi + j] + ((q >>> 4) - 8) * x[xi + j + 16];
            }
            sum += d * s;
        }
        return sum;
    }
}
