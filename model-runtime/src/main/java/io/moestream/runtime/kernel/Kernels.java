package io.moestream.runtime.kernel;

import io.moestream.runtime.gguf.Float16;
import io.moestream.runtime.gguf.GgmlType;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Locale;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Row-times-activation dot products over weights read in place from a (mapped, little-endian)
 * buffer, with llama.cpp's numerics: Q8_0/Q4_0 rows against a Q8_0-quantized activation
 * (per block an exact integer dot, times {@code d_w * d_x} in float, summed in float), F16/BF16 rows
 * against an activation rounded to that type, F32 against F32.
 *
 * <p>Three implementations, chosen once by {@link #get()}: {@link ScalarKernels} (plain Java, always
 * available), {@code VectorKernels} ({@code jdk.incubator.vector}) and, in front of whichever of
 * those two runs, {@link NativeKernels} for Q8_0/Q4_0 (C through JNI, when the library was built
 * and the CPU has AVX2). All follow llama.cpp's order of float operations for Q8_0, Q4_0, F16 and
 * F32, so they give the same bits (BF16: equal to float rounding). The same goes for the attention
 * and SwiGLU helpers here. System property {@code moestream.kernels}: unset or {@code native} for
 * the default; {@code vector} or {@code scalar} for Java kernels only; {@code vector-fast-q4} uses
 * the Vector API kernels with Q4_0 summed in 16 float lanes instead of llama.cpp's per-block fma
 * chain (faster, but Q4_0 logits then differ from llama.cpp's by float rounding, which can flip an
 * activation quant).
 */
public abstract class Kernels {

    private static final Logger LOG = LoggerFactory.getLogger(Kernels.class);
    private static final Kernels SCALAR = new ScalarKernels();
    private static volatile Kernels chosen;
    private static boolean warmedUp;

    /** The implementation used for all matmuls, chosen (and logged) on first use. */
    public static Kernels get() {
        Kernels k = chosen;
        if (k == null) {
            synchronized (Kernels.class) {
                k = chosen;
                if (k == null) {
                    k = choose();
                    chosen = k;
                }
            }
        }
        return k;
    }

    /** The plain-Java implementation (tests compare against it). */
    public static Kernels scalar() {
        return SCALAR;
    }

    /** The native kernels in front of the Vector API (or scalar) kernels, or null when they are unavailable. */
    public static Kernels nativeOrNull() {
        Kernels java = vectorOrNull();
        return nativeOrNull(java == null ? SCALAR : java);
    }

    /** The Vector API implementation, or null when {@code jdk.incubator.vector} is missing or unusable. */
    public static Kernels vectorOrNull() {
        return vectorOrNull(false);
    }

    /** The Vector API implementation, with Q4_0 in float lanes when {@code fastQ4}; null when unavailable. */
    static Kernels vectorOrNull(boolean fastQ4) {
        if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) {
            return null;
        }
        try {
            Kernels k = (Kernels) Class.forName("io.moestream.runtime.kernel.VectorKernels")
                    .getDeclaredConstructor(boolean.class).newInstance(fastQ4);
            selfTest(k);
            return k;
        } catch (ReflectiveOperationException | LinkageError | RuntimeException e) {
            LOG.warn("Vector API kernels unusable on this JVM ({}); using scalar kernels", e.toString());
            return null;
        }
    }

    private static Kernels choose() {
        String forced = System.getProperty("moestream.kernels", "").toLowerCase(Locale.ROOT);
        if (!List.of("", "native", "vector", "vector-fast-q4", "scalar").contains(forced)) {
            LOG.warn("moestream.kernels={} is not one of native, vector, vector-fast-q4, scalar; using the default", forced);
            forced = "";
        }
        Kernels java = forced.equals("scalar") ? null : vectorOrNull(forced.equals("vector-fast-q4"));
        if (java == null) {
            java = SCALAR;
            if (!forced.equals("scalar")) {
                LOG.info("Java kernels: scalar (add --add-modules jdk.incubator.vector for the Vector API kernels)");
            }
        }
        Kernels k = java;
        if (forced.isEmpty() || forced.equals("native")) {
            k = nativeOrNull(java);
            if (k == null) {
                k = java;
                LOG.info("native kernels not used: {}", NativeKernels.unavailableReason());
            }
        }
        LOG.info("matmul kernels: {}", k.name());
        if (k != SCALAR && Boolean.parseBoolean(System.getProperty("moestream.kernels.warmup", "true"))) {
            Thread warm = new Thread(Kernels::warmUp, "moestream-kernel-warmup");
            warm.setDaemon(true);
            warm.start();
        }
        return k;
    }

    /**
     * The native Q8_0/Q4_0 kernels in front of {@code java} (which takes every other product), or
     * null when they are not built, do not load, fail their self-test, or the CPU cannot run them.
     */
    static Kernels nativeOrNull(Kernels java) {
        NativeKernels k = NativeKernels.orNull(java);
        if (k == null) {
            return null;
        }
        try {
            selfTest(k);
            agreesWithScalar(k);
            return k;
        } catch (RuntimeException e) {
            LOG.warn("native kernels unusable ({}); using {}", e.toString(), java.name());
            NativeKernels.unusable(e.toString());
            return null;
        }
    }

    /** One row group of each quantized type against the scalar kernels' bits. */
    private static void agreesWithScalar(Kernels k) {
        int cols = 96;
        int rows = 9;
        for (GgmlType t : new GgmlType[] {GgmlType.Q8_0, GgmlType.Q4_0}) {
            int rowBytes = (int) t.bytesFor(cols);
            ByteBuffer w = ByteBuffer.allocateDirect(rows * rowBytes).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < w.capacity(); i++) {
                w.put(i, (byte) (i * 131 + 7));
            }
            int blockBytes = rowBytes / (cols / 32);
            for (int i = 0; i < rows; i++) {
                for (int b = 0; b < cols / 32; b++) {
                    w.putShort(i * rowBytes + b * blockBytes, (short) (0x1c00 + 97 * i + 13 * b)); // finite F16 scales
                }
            }
            float[] x = new float[cols];
            for (int i = 0; i < cols; i++) {
                x[i] = (float) Math.sin(i * 0.7);
            }
            Activation a = new Activation().prepare(x, 0, cols, t);
            float[] out = new float[rows];
            k.dotRows(t, w, 0, rowBytes, rows, cols, a, out, 0);
            for (int i = 0; i < rows; i++) {
                float s = SCALAR.dot(t, w, i * rowBytes, cols, a);
                if (Float.floatToIntBits(out[i]) != Float.floatToIntBits(s)) {
                    throw new IllegalStateException(t + " row " + i + " gave " + out[i] + ", the scalar kernels " + s);
                }
            }
        }
    }

    /**
     * Runs the chosen kernels' quantized single and batched products until the JIT has compiled
     * them (once per JVM; later calls return at once, or wait for a warm-up in progress). Vector
     * API code runs ~100x slower in the interpreter than compiled, and a kernel that only large
     * batches reach (8 activations) would otherwise stay interpreted for seconds of real work.
     * Started in the background when the vector kernels are chosen; benchmarks call it before timing.
     */
    public static synchronized void warmUp() {
        if (warmedUp || !Boolean.parseBoolean(System.getProperty("moestream.kernels.warmup", "true"))) {
            return;
        }
        Kernels k = get();
        int cols = 1024; // 32 blocks per call: the loop back-edges trigger compilation after ~600 calls
        Activation[] xs = new Activation[7]; // batched groups (2 for Q8_0, 4 for Q4_0) and single rows
        float[] x = new float[cols];
        for (int i = 0; i < cols; i++) {
            x[i] = (float) Math.sin(i);
        }
        float[][] out = new float[xs.length][1];
        float[] rowsOut = new float[4];
        for (GgmlType t : new GgmlType[] {GgmlType.Q8_0, GgmlType.Q4_0}) {
            ByteBuffer w = weights(t, cols);
            ByteBuffer rows = weights(t, 4 * cols); // four rows: the single-activation row-group kernels
            for (int i = 0; i < xs.length; i++) {
                xs[i] = new Activation().prepare(x, 0, cols, t);
            }
            for (int i = 0; i < 2_000; i++) {
                k.dots(t, w, 0, cols, xs, xs.length, out, 0);
                k.dotRows(t, rows, 0, (int) t.bytesFor(cols), 4, cols, xs[0], rowsOut, 0);
            }
        }
        warmedUp = true;
    }

    /** Runs one small product of each type (the incubator API differs between Java versions). */
    private static void selfTest(Kernels k) {
        for (GgmlType t : new GgmlType[] {GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.F16, GgmlType.BF16, GgmlType.F32}) {
            int cols = 64;
            ByteBuffer w = weights(t, cols);
            float[] x = new float[cols];
            x[0] = 1;
            Activation a = new Activation().prepare(x, 0, cols, t);
            float r = k.dot(t, w, 0, cols, a);
            if (r != 0f) {
                throw new IllegalStateException("self-test of " + t + " gave " + r);
            }
        }
    }

    /**
     * A zeroed row of {@code cols} weights in a read-only direct buffer: the buffer class of mapped
     * model files, so the JIT's type profile of the kernels stays that of real use (a heap buffer
     * seen while warming up would make the compiled kernels deoptimise on the first mapped one).
     */
    private static ByteBuffer weights(GgmlType t, int cols) {
        return ByteBuffer.allocateDirect((int) t.bytesFor(cols)).asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
    }

    /** Short name for logs and bench output ("scalar", "vector-512"...). */
    public abstract String name();

    /**
     * The dot product of the row of {@code cols} values of {@code type} at byte {@code off} of
     * {@code w} with {@code x} (prepared for {@code type}).
     */
    public abstract float dot(GgmlType type, ByteBuffer w, int off, int cols, Activation x);

    /**
     * Dots of {@code rows} consecutive rows ({@code rowBytes} apart, the first at byte {@code off})
     * with one activation: {@code out[outIndex + i] = row i . x}, each exactly as {@link #dot}.
     */
    public void dotRows(GgmlType type, ByteBuffer w, int off, int rowBytes, int rows, int cols, Activation x,
                        float[] out, int outIndex) {
        for (int i = 0; i < rows; i++) {
            out[outIndex + i] = dot(type, w, off + i * rowBytes, cols, x);
        }
    }

    /**
     * The first {@code rows / 8 * 8} of {@code rows} Q4_0 rows (as for {@link #dotRows}) copied into
     * this implementation's layout for {@link #dotRowsRepacked}, or null when it has none (the Java
     * kernels) or cannot take these rows. The copy is new memory of about the rows' size.
     */
    public ByteBuffer repackQ4_0(ByteBuffer w, int off, int rowBytes, int rows, int cols) {
        return null;
    }

    /**
     * {@link #dotRows} on rows [first, first + rows) of a {@link #repackQ4_0} copy of {@code cols}
     * columns, the same results bit for bit; {@code first} and {@code rows} multiples of 8. False
     * (nothing written) when it cannot take this activation: the caller then uses the rows in place.
     */
    public boolean dotRowsRepacked(ByteBuffer repacked, int first, int rows, int cols, Activation x, float[] out,
                                   int outIndex) {
        return false;
    }

    /**
     * Dots of one row with {@code n} activations: {@code out[k][outIndex] = row . xs[k]}. Reading
     * the row once for many activations is what makes batched decoding cheaper than one at a time.
     */
    public void dots(GgmlType type, ByteBuffer w, int off, int cols, Activation[] xs, int n, float[][] out, int outIndex) {
        for (int k = 0; k < n; k++) {
            out[k][outIndex] = dot(type, w, off, cols, xs[k]);
        }
    }

    /**
     * Dots of {@code rows} consecutive rows ({@code rowBytes} apart, the first at byte {@code off})
     * with the {@code n} activations from {@code xs[from]}: {@code out[from + k][outIndex + i] =
     * row i . xs[from + k]}, each exactly as {@link #dot}.
     */
    public void dotsRows(GgmlType type, ByteBuffer w, int off, int rowBytes, int rows, int cols, Activation[] xs, int from,
                         int n, float[][] out, int outIndex) {
        Activation[] x = from == 0 ? xs : java.util.Arrays.copyOfRange(xs, from, from + n);
        float[][] o = from == 0 ? out : java.util.Arrays.copyOfRange(out, from, from + n);
        for (int i = 0; i < rows; i++) {
            dots(type, w, off + i * rowBytes, cols, x, n, o, outIndex + i);
        }
    }

    /**
     * Attention scores over float32 keys: {@code att[base + t] = (k[t] . q) * scale} for t in
     * [from, to), {@code k[t]} the {@code headDim} values at {@code k[t * headDim]}, each dot exactly
     * {@link CpuMath#dotF32} (llama.cpp's {@code ggml_vec_dot_f32}).
     */
    public void scoresF32(float[] k, int headDim, int from, int to, float[] q, int qOff, float scale, float[] att, int base) {
        float[] scratch = new float[64];
        for (int t = from; t < to; t++) {
            att[base + t] = CpuMath.dotF32(k, t * headDim, q, qOff, headDim, scratch) * scale;
        }
    }

    /**
     * llama.cpp's softmax of attention scores {@code att[0..len)}, of which {@code [0, a)} and
     * {@code [b, len)} are visible (the rest masked): ggml's vector expf ({@link CpuMath#vexp}) of
     * {@code score - max}, summed per 16 positions ({@link CpuMath#reduce16}; masked ones and the
     * padding to 16 count as 0) into a double, then each times {@code (float) (1 / sum)}. {@code att}
     * holds at least {@code len} rounded up to 16; the padding is left zero.
     */
    public void maskedSoftmax(float[] att, int len, int a, int b, float max) {
        int padded = (len + 15) & ~15;
        for (int t = 0; t < len; t++) {
            att[t] = t < a || t >= b ? CpuMath.vexp(att[t] - max) : 0f;
        }
        java.util.Arrays.fill(att, len, padded, 0f);
        double sum = 0;
        for (int c = 0; c < padded; c += 16) {
            sum += CpuMath.reduce16(att, c);
        }
        float inv = (float) (1.0 / sum);
        for (int t = 0; t < len; t++) {
            att[t] *= inv;
        }
    }

    /**
     * {@link #maskedSoftmax(float[], int, int, int, float)} with an attention sink, as ggml's
     * {@code soft_max} with {@code sinks}: the max is {@code max(max, sink)}, and
     * {@code expf(sink - max)} (libm's) is added to the double sum before it is inverted; the sink
     * adds no value.
     */
    public void maskedSoftmax(float[] att, int len, int a, int b, float max, float sink) {
        float m = max > sink ? max : sink;
        int padded = (len + 15) & ~15;
        for (int t = 0; t < len; t++) {
            att[t] = t < a || t >= b ? CpuMath.vexp(att[t] - m) : 0f;
        }
        java.util.Arrays.fill(att, len, padded, 0f);
        double sum = 0;
        for (int c = 0; c < padded; c += 16) {
            sum += CpuMath.reduce16(att, c);
        }
        sum += Libm.expf(sink - m);
        float inv = (float) (1.0 / sum);
        for (int t = 0; t < len; t++) {
            att[t] *= inv;
        }
    }

    /**
     * Attention of one query's {@code heads} heads (a KV head's GQA group) over float32 blocks, as
     * llama.cpp's CPU attention without flash attention computes it: {@link #scoresF32} over the
     * visible positions [0, a) and [b, len), Java's {@code Math.max} of them in order,
     * {@link #maskedSoftmax}, then {@link #valueSumsF32} in {@code lanes} lanes.
     *
     * @param k   block i's keys ({@code bt} positions of {@code headDim}), null for blocks no visible position falls in
     * @param v   block i's values, likewise
     * @param q   head g's query at {@code qOff + g * headDim}
     * @param att head g's scores, then its probabilities (at least {@code len} rounded up to 16 floats)
     * @param out head g's output at {@code outOff + g * headDim}
     */
    public void attendF32(float[][] k, float[][] v, int bt, int headDim, int len, int a, int b, float[] q, int qOff,
                          int heads, float scale, float[][] att, int lanes, float[] out, int outOff) {
        attendF32(k, v, bt, headDim, len, a, b, q, qOff, heads, scale, att, lanes, out, outOff, null, 0);
    }

    /**
     * {@link #attendF32(float[][], float[][], int, int, int, int, int, float[], int, int, float, float[][], int, float[], int)}
     * with attention sinks: head g's softmax includes the sink logit {@code sinks[sinkOff + g]}
     * ({@link #maskedSoftmax(float[], int, int, int, float, float)}); {@code sinks} null: none.
     */
    public void attendF32(float[][] k, float[][] v, int bt, int headDim, int len, int a, int b, float[] q, int qOff,
                          int heads, float scale, float[][] att, int lanes, float[] out, int outOff, float[] sinks, int sinkOff) {
        for (int g = 0; g < heads; g++) {
            float max = Float.NEGATIVE_INFINITY;
            for (int r = 0; r < 2; r++) {
                int to = r == 0 ? a : len;
                for (int t = r == 0 ? 0 : b; t < to; ) {
                    int first = t / bt * bt;
                    int end = Math.min(to, first + bt);
                    scoresF32(k[t / bt], headDim, t - first, end - first, q, qOff + g * headDim, scale, att[g], first);
                    for (int s = t; s < end; s++) {
                        max = Math.max(max, att[g][s]);
                    }
                    t = end;
                }
            }
            if (sinks == null) {
                maskedSoftmax(att[g], len, a, b, max);
            } else {
                maskedSoftmax(att[g], len, a, b, max, sinks[sinkOff + g]);
            }
        }
        valueSumsF32(v, bt, headDim, len, a, b, att, heads, lanes, out, outOff);
    }

    /**
     * Attention scores over int8 key codes stored channel-major ({@code codes[c * tokens + t]}, the
     * KV cache's int8 codec): {@code att[base + t] = (bias + dot_t) * scale} for t in [from, to),
     * {@code dot_t} = the sum over channels c, in order from 0, of {@code qs[c] * code}.
     */
    public void scoresInt8(byte[] codes, int tokens, int hd, float[] qs, int from, int to, float bias, float scale,
                           float[] att, int base) {
        // channel by channel over all the positions at once (each position's sum still goes in
        // channel order), so no position waits on its previous add
        int n = to - from;
        float[] dots = new float[n];
        for (int c = 0; c < hd; c++) {
            float w = qs[c];
            int o = c * tokens + from;
            for (int i = 0; i < n; i++) {
                dots[i] += w * (codes[o + i] & 0xFF);
            }
        }
        for (int i = 0; i < n; i++) {
            att[base + from + i] = (bias + dots[i]) * scale;
        }
    }

    /**
     * Attention value sums over int8 value codes (the KV cache's int8 codec): for t in [from, to)
     * with {@code a = p[base + t] != 0}, lane row {@code ((base + t) % lanes) * hd} of {@code acc}
     * gets {@code acc[row + c] = fma(min_g + scale_g * code, a, acc[row + c])} for c < hd, where
     * {@code code = codes[t * hd + c] & 0xFF} and group {@code g = c / group} of position t has its
     * F16 scale and min at {@code scales[t * (hd / group) + g]} / {@code mins[...]}.
     */
    public void accumulateInt8(byte[] codes, int hd, int group, short[] scales, short[] mins, float[] p, int base,
                               int from, int to, float[] acc, int lanes) {
        int gpt = hd / group;
        for (int t = from; t < to; t++) {
            float a = p[base + t];
            if (a != 0) {
                accumulateInt8Row(codes, t * hd, hd, group, scales, mins, t * gpt, a, acc, ((base + t) % lanes) * hd);
            }
        }
    }

    // one position, in a method of its own (with IntSlab calling once per position: 127-136 tok/s on
    // a 16-sequence int8 decode against 95-98 with this loop inline; measured, not understood)
    private static void accumulateInt8Row(byte[] codes, int off, int hd, int group, short[] scales, short[] mins, int slot,
                                          float a, float[] acc, int row) {
        for (int g = 0; g < hd / group; g++) {
            float sc = Float16.toFloat(scales[slot + g]);
            float m = Float16.toFloat(mins[slot + g]);
            for (int c = g * group; c < g * group + group; c++) {
                acc[row + c] = Math.fma(m + sc * (codes[off + c] & 0xFF), a, acc[row + c]);
            }
        }
    }

    /**
     * Attention value sums over int8 codes stored channel-major ({@code codes[c * tokens + t]}, the
     * latent KV cache's keys read as its values), one key group, into a channel-major accumulator: for
     * t in [from, to) with {@code a = p[base + t] != 0}, {@code acc[c * lanes + (base + t) % lanes] =
     * fma(mins[c] + scales[c] * code, a, that)} for c < hd, {@code code = codes[c * tokens + t] & 0xFF}.
     * Each accumulator element takes its positions in order, as {@link #accumulateInt8}'s lane rows do,
     * so the transposed sums are the same floats.
     */
    public void accumulateInt8Columns(byte[] codes, int tokens, int hd, float[] mins, float[] scales, float[] p, int base,
                                      int from, int to, float[] acc, int lanes) {
        for (int c = 0; c < hd; c++) {
            float m = mins[c];
            float sc = scales[c];
            for (int t = from; t < to; t++) {
                float a = p[base + t];
                if (a != 0) {
                    int i = c * lanes + (base + t) % lanes;
                    acc[i] = Math.fma(m + sc * (codes[c * tokens + t] & 0xFF), a, acc[i]);
                }
            }
        }
    }

    /** {@code ggml_vec_swiglu_f32}: {@code g[i] = silu(g[i]) * u[i]} for the first n values, in place ({@link CpuMath#swiglu}). */
    public void swiglu(float[] g, float[] u, int n) {
        CpuMath.swiglu(g, u, n);
    }

    /**
     * Attention value sums over float32 values in blocks, for {@code heads} query heads that read the
     * same values: {@code out[outOff + g * headDim + i]} = the sum over the visible positions t (those
     * in [0, a) and [b, len)) of {@code p[g][t] * v[t][i]}, where position t's values are the
     * {@code headDim} floats at {@code (t % bt) * headDim} of {@code v[t / bt]}; summed as ggml does:
     * lane {@code t % lanes} (64 or 16) accumulates its positions in order with one fma each, then
     * {@link CpuMath#reduceLanes}.
     */
    public void valueSumsF32(float[][] v, int bt, int headDim, int len, int a, int b, float[][] p, int heads, int lanes,
                             float[] out, int outOff) {
        float[] acc = new float[lanes * headDim];
        for (int g = 0; g < heads; g++) {
            java.util.Arrays.fill(acc, 0f);
            for (int t = 0; t < len; t++) {
                if (t >= a && t < b) {
                    continue;
                }
                float[] block = v[t / bt];
                int off = (t % bt) * headDim;
                int row = (t % lanes) * headDim;
                for (int i = 0; i < headDim; i++) {
                    acc[row + i] = Math.fma(block[off + i], p[g][t], acc[row + i]);
                }
            }
            CpuMath.reduceLanes(acc, lanes, headDim, out, outOff + g * headDim);
        }
    }

    /**
     * Attention value sums over float32 values: for t in [from, to), lane {@code (base + t) % lanes}
     * of {@code acc} (rows of {@code headDim}) += {@code p[base + t] * v[t]}, each element one fma.
     */
    public void accumulateF32(float[] v, int headDim, int from, int to, float[] p, int base, float[] acc, int lanes) {
        for (int t = from; t < to; t++) {
            float a = p[base + t];
            int off = t * headDim;
            int row = ((base + t) % lanes) * headDim;
            for (int i = 0; i < headDim; i++) {
                acc[row + i] = Math.fma(v[off + i], a, acc[row + i]);
            }
        }
    }

    /** {@code out[outOff + i]} = the {@code lanes} (64 or 16) rows of {@code acc} added up in ggml's order ({@link CpuMath#reduceLanes}). */
    public void reduceLanes(float[] acc, int lanes, int hd, float[] out, int outOff) {
        CpuMath.reduceLanes(acc, lanes, hd, out, outOff);
    }

    /**
     * Weight-activation multiplies per pool task for products with {@code activations} activations:
     * small enough to even out the threads' finishing times, large enough to keep the pool's cost small.
     */
    public long taskWork(int activations) {
        return 1 << 16;
    }

    /** Activations per pool task at most (a task covers some rows times some activations). */
    public int taskActivations() {
        return Integer.MAX_VALUE;
    }
}
