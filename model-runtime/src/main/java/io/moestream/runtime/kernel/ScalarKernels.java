package io.moestream.runtime.kernel;

import io.moestream.runtime.gguf.Float16;
import io.moestream.runtime.gguf.GgmlType;

import java.nio.ByteBuffer;

/**
 * Plain-Java kernels: the row is copied into a thread-local array (one bulk read instead of a
 * bounds-checked get per byte) and multiplied element by element. Per block the summation order is
 * ggml's generic one: {@code sum += isum * (d_w * d_x)}.
 */
final class ScalarKernels extends Kernels {

    private static final ThreadLocal<byte[]> ROW = ThreadLocal.withInitial(() -> new byte[0]);

    @Override
    public String name() {
        return "scalar";
    }

    private static byte[] row(ByteBuffer w, int off, int bytes) {
        byte[] r = ROW.get();
        if (r.length < bytes) {
            r = new byte[bytes];
            ROW.set(r);
        }
        w.get(off, r, 0, bytes);
        return r;
    }

    @Override
    public float dot(GgmlType type, ByteBuffer w, int off, int cols, Activation x) {
        byte[] r = row(w, off, (int) type.bytesFor(cols));
        switch (type) {
            case Q8_0: return dotQ8_0(r, cols / 32, x);
            case Q4_0: return dotQ4_0(r, cols / 32, x);
            case F16: return dotF16(r, cols, x);
            case BF16: return dotBf16(r, cols, x.f);
            case F32: return dotF32(r, cols, x);
            default: throw new IllegalArgumentException("unsupported weight type " + type);
        }
    }

    private static short half(byte[] r, int i) {
        return (short) ((r[i] & 0xFF) | (r[i + 1] << 8));
    }

    /**
     * ggml's AVX2 {@code vec_dot_q8_0_q8_0} order: 8 float lanes, lane j accumulates
     * {@code fma(d_w * d_x, sum of products 4j..4j+3, lane)} over the blocks, then
     * {@code hsum_float_8}.
     */
    private static float dotQ8_0(byte[] r, int blocks, Activation x) {
        short[] q = x.q;
        float[] lane = new float[8];
        for (int b = 0, o = 0; b < blocks; b++, o += 34) {
            float d = Float16.toFloat(half(r, o)) * x.d[b];
            for (int j = 0; j < 8; j++) {
                int i = b * 32 + 4 * j;
                int p = o + 2 + 4 * j;
                int isum = r[p] * q[i] + r[p + 1] * q[i + 1] + r[p + 2] * q[i + 2] + r[p + 3] * q[i + 3];
                lane[j] = Math.fma(d, (float) isum, lane[j]);
            }
        }
        return hsum8(lane);
    }

    /** {@code hsum_float_8}: halves, then pairs two apart, then neighbours. */
    static float hsum8(float[] l) {
        return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
    }

    /**
     * ggml's repacked Q4_0 ({@code q4_0_8x8}) gemv order, which llama.cpp uses for Q4_0 matrices
     * with a multiple of 8 rows on AVX2 machines: per row {@code acc = fma(isum, d_w * d_x, acc)}
     * block after block.
     */
    private static float dotQ4_0(byte[] r, int blocks, Activation x) {
        short[] q = x.q;
        float acc = 0;
        for (int b = 0, o = 0; b < blocks; b++, o += 18) {
            int isum = 0;
            for (int j = 0; j < 16; j++) {
                int v = r[o + 2 + j] & 0xFF;
                isum += ((v & 0xF) - 8) * q[b * 32 + j] + ((v >>> 4) - 8) * q[b * 32 + 16 + j];
            }
            acc = Math.fma((float) isum, Float16.toFloat(half(r, o)) * x.d[b], acc);
        }
        return acc;
    }

    /**
     * F16 rows against an F16-rounded activation, in the activation's {@link DotOrder}:
     * {@code ggml_vec_dot_f16} on AVX-512 (4 x 16 fma lanes over steps of 64, {@link CpuMath#reduce64}
     * into a double, the {@code cols % 64} tail added in double) or tinyBLAS (16 fma lanes, one
     * {@link CpuMath#reduce16}).
     */
    private static float dotF16(byte[] r, int cols, Activation a) {
        float[] x = a.f;
        if (a.order.tiled()) {
            float[] acc = new float[16];
            for (int i = 0; i < cols; i += 16) {
                for (int e = 0; e < 16; e++) {
                    acc[e] = Math.fma(Float16.toFloat(half(r, 2 * (i + e))), x[i + e], acc[e]);
                }
            }
            return CpuMath.reduce16(acc, 0);
        }
        float[] acc = new float[64];
        int n = cols & ~63;
        for (int i = 0; i < n; i += 64) {
            for (int e = 0; e < 64; e++) {
                acc[e] = Math.fma(Float16.toFloat(half(r, 2 * (i + e))), x[i + e], acc[e]);
            }
        }
        double sum = n > 0 ? CpuMath.reduce64(acc, 0) : 0.0;
        for (int i = n; i < cols; i++) {
            sum += Float16.toFloat(half(r, 2 * i)) * x[i];
        }
        return (float) sum;
    }

    private static float dotBf16(byte[] r, int cols, float[] x) {
        float sum = 0;
        for (int i = 0; i < cols; i++) {
            sum += Float16.bf16ToFloat(half(r, 2 * i)) * x[i];
        }
        return sum;
    }

    /**
     * F32 rows in the activation's {@link DotOrder}: {@code ggml_vec_dot_f32} on AVX-512 (as
     * {@link #dotF16} but the tail added in float, as {@link CpuMath#dotF32}) or tinyBLAS.
     */
    private static float dotF32(byte[] r, int cols, Activation a) {
        float[] x = a.f;
        if (a.order.tiled()) {
            float[] acc = new float[16];
            for (int i = 0; i < cols; i += 16) {
                for (int e = 0; e < 16; e++) {
                    acc[e] = Math.fma(f32(r, 4 * (i + e)), x[i + e], acc[e]);
                }
            }
            return CpuMath.reduce16(acc, 0);
        }
        float[] acc = new float[64];
        int n = cols & ~63;
        for (int i = 0; i < n; i += 64) {
            for (int e = 0; e < 64; e++) {
                acc[e] = Math.fma(f32(r, 4 * (i + e)), x[i + e], acc[e]);
            }
        }
        float sum = n > 0 ? CpuMath.reduce64(acc, 0) : 0f;
        int plain = n + ((cols - n) & ~7);
        for (int i = n; i < cols; i++) {
            sum = CpuMath.addTail(sum, f32(r, 4 * i), x[i], i < plain);
        }
        return sum;
    }

    private static float f32(byte[] r, int o) {
        return Float.intBitsToFloat((r[o] & 0xFF) | (r[o + 1] & 0xFF) << 8 | (r[o + 2] & 0xFF) << 16 | r[o + 3] << 24);
    }
}
