package io.moestream.runtime.kernel;

import static io.moestream.runtime.kernel.KQuantBlocks.half;

import io.moestream.runtime.gguf.Float16;
import io.moestream.runtime.gguf.GgmlType;

import java.nio.ByteBuffer;

/**
 * Row dot products for the K-quants (Q2_K..Q6_K against a Q8_K activation), Q5_0, IQ4_NL and MXFP4
 * (against a Q8_0 activation) and BF16 (against a BF16-rounded activation), with the float32
 * operations in the order llama.cpp's CPU backend uses on an AVX-512 machine (docs/runtime.md,
 * "K-quants and other block types"). Integer block sums are exact, so only the grouping of the
 * integer sums into floats and the order of the float steps matter:
 * <ul>
 *   <li>Q3_K, Q5_K, Q6_K ({@code ggml_vec_dot_qN_K_q8_K}, AVX2): 8 integer lanes per super-block,
 *       lane k summing the products of values 32c + 4k .. 32c + 4k + 3 of every 32-value chunk c
 *       times their scale (Q6_K minus {@code 32 * (bsums[2k] * sc[2k] + bsums[2k+1] * sc[2k+1])});
 *       lane k += {@code fma(d_w * d_x, lane sum)} per super-block, then {@code hsum_float_8}; Q5_K
 *       adds its mins separately ({@code summs}).</li>
 *   <li>Q4_K, Q2_K (repacked {@code q4_K_8x8} / {@code q2_K_8x8}): one accumulator for the scaled
 *       sums and one for the mins, {@code fma(isum, d_w * d_x, acc)} per super-block (gemv) or per
 *       64 (Q4_K) / 128 (Q2_K) values (gemm, see {@link Activation#gemmOrder}); result acc - acc_min.</li>
 *   <li>IQ4_NL, MXFP4 (repacked {@code *_8x8}, as Q4_0): {@code acc = fma(isum, d_w * d_x, acc)} per block.</li>
 *   <li>Q5_0 (as Q8_0): 8 lanes of four consecutive products, {@code fma} per block, {@code hsum_float_8}.</li>
 *   <li>BF16 ({@code ggml_vec_dot_bf16} with AVX512-BF16, or tinyBLAS for a prefill): pairs of
 *       products added odd then even into 16 float lanes ({@code vdpbf16ps}), reduced as
 *       {@code _mm512_reduce_add_ps}.</li>
 * </ul>
 */
public final class KQuantKernels {

    /**
     * Whether Q5_K's mins ({@code summs += dmin * isum}) are one fused multiply-add, as GCC contracts
     * that scalar line under {@code -march=native}.
     */
    static final boolean Q5K_FUSED_MINS = true;

    private static final ThreadLocal<byte[]> ROW = ThreadLocal.withInitial(() -> new byte[0]);

    private KQuantKernels() {}

    /** Whether these kernels compute products with {@code type}. */
    public static boolean handles(GgmlType type) {
        return type == GgmlType.BF16 || KQuantBlocks.handles(type);
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

    /** Dots of {@code rows} consecutive rows ({@code rowBytes} apart, the first at byte {@code off}) with {@code x}. */
    public static void dotRows(GgmlType type, ByteBuffer w, int off, int rowBytes, int rows, int cols, Activation x,
                               float[] out, int outIndex) {
        for (int i = 0; i < rows; i++) {
            out[outIndex + i] = dot(type, w, off + i * rowBytes, cols, x);
        }
    }

    /** Dots of {@code rows} rows with the {@code n} activations from {@code xs[from]}: {@code out[from + k][outIndex + i]}. */
    public static void dotsRows(GgmlType type, ByteBuffer w, int off, int rowBytes, int rows, int cols, Activation[] xs,
                                int from, int n, float[][] out, int outIndex) {
        for (int i = 0; i < rows; i++) {
            for (int k = from; k < from + n; k++) {
                out[k][outIndex + i] = dot(type, w, off + i * rowBytes, cols, xs[k]);
            }
        }
    }

    /** The dot product of the row of {@code cols} values at byte {@code off} of {@code w} with {@code x} (prepared for {@code type}). */
    public static float dot(GgmlType type, ByteBuffer w, int off, int cols, Activation x) {
        byte[] r = row(w, off, (int) type.bytesFor(cols));
        return dot(type, r, cols, x);
    }

    /** The dot product of the row in {@code r} with {@code x}. */
    public static float dot(GgmlType type, byte[] r, int cols, Activation x) {
        if (x.type() != type || x.length() != cols) {
            throw new IllegalArgumentException("activation prepared for " + x.type() + " x " + x.length()
                    + ", row is " + type + " x " + cols);
        }
        return switch (type) {
            case Q6_K -> dotQ6K(r, cols / 256, x);
            case Q5_K -> dotQ5K(r, cols / 256, x);
            case Q3_K -> dotQ3K(r, cols / 256, x);
            case Q4_K -> dotQ4K(r, cols / 256, x);
            case Q2_K -> dotQ2K(r, cols / 256, x);
            case Q5_0 -> dotQ50(r, cols / 32, x);
            case IQ4_NL, MXFP4 -> dotNibbleLut(type, r, cols / 32, x);
            case BF16 -> dotBf16(r, cols, x);
            default -> throw new IllegalArgumentException("unsupported weight type " + type);
        };
    }

    private static float dotQ6K(byte[] r, int blocks, Activation x) {
        short[] q8 = x.q;
        float[] acc = new float[8];
        int[] lane = new int[8];
        for (int b = 0; b < blocks; b++) {
            int o = b * 210;
            int qb = b * 256;
            float d = x.kd[b] * half(r, o + 208);
            java.util.Arrays.fill(lane, 0);
            for (int c = 0; c < 8; c++) {
                for (int k = 0; k < 8; k++) {
                    int v = 32 * c + 4 * k;
                    int s = 0;
                    for (int t = 0; t < 4; t++) {
                        s += KQuantBlocks.q6(r, o, v + t) * q8[qb + v + t];
                    }
                    lane[k] += r[o + 192 + 2 * c + k / 4] * s;
                }
            }
            for (int k = 0; k < 8; k++) {
                int bs = b * 16 + 2 * k;
                int sub = 32 * (x.kbsums[bs] * r[o + 192 + 2 * k] + x.kbsums[bs + 1] * r[o + 192 + 2 * k + 1]);
                acc[k] = Math.fma(d, (float) (lane[k] - sub), acc[k]);
            }
        }
        return ScalarKernels.hsum8(acc);
    }

    private static float dotQ5K(byte[] r, int blocks, Activation x) {
        short[] q8 = x.q;
        float[] acc = new float[8];
        int[] lane = new int[8];
        float summs = 0;
        for (int b = 0; b < blocks; b++) {
            int o = b * 176;
            int qb = b * 256;
            float d = x.kd[b] * half(r, o);
            float dmin = -x.kd[b] * half(r, o + 2);
            int mins = 0;
            for (int j = 0; j < 8; j++) {
                mins += KQuantBlocks.scaleMinK4(r, o + 4, j, 1) * (x.kbsums[b * 16 + 2 * j] + x.kbsums[b * 16 + 2 * j + 1]);
            }
            summs = Q5K_FUSED_MINS ? Math.fma(dmin, (float) mins, summs) : summs + dmin * mins;
            java.util.Arrays.fill(lane, 0);
            for (int c = 0; c < 8; c++) {
                int sc = KQuantBlocks.scaleMinK4(r, o + 4, c, 0);
                for (int k = 0; k < 8; k++) {
                    int v = 32 * c + 4 * k;
                    int s = 0;
                    for (int t = 0; t < 4; t++) {
                        s += KQuantBlocks.q5k(r, o, v + t) * q8[qb + v + t];
                    }
                    lane[k] += sc * s;
                }
            }
            for (int k = 0; k < 8; k++) {
                acc[k] = Math.fma(d, (float) lane[k], acc[k]);
            }
        }
        return ScalarKernels.hsum8(acc) + summs;
    }

    private static float dotQ3K(byte[] r, int blocks, Activation x) {
        short[] q8 = x.q;
        float[] acc = new float[8];
        int[] lane = new int[8];
        for (int b = 0; b < blocks; b++) {
            int o = b * 110;
            int qb = b * 256;
            float d = x.kd[b] * half(r, o + 108);
            java.util.Arrays.fill(lane, 0);
            for (int c = 0; c < 8; c++) {
                for (int k = 0; k < 8; k++) {
                    int v = 32 * c + 4 * k;
                    int s = 0;
                    for (int t = 0; t < 4; t++) {
                        s += KQuantBlocks.q3k(r, o, v + t) * q8[qb + v + t];
                    }
                    lane[k] += KQuantBlocks.scaleQ3K(r, o + 96, 2 * c + k / 4) * s;
                }
            }
            for (int k = 0; k < 8; k++) {
                acc[k] = Math.fma(d, (float) lane[k], acc[k]);
            }
        }
        return ScalarKernels.hsum8(acc);
    }

    /** Repacked q4_K_8x8: per super-block (gemv) or per 64 values (gemm) one fma for the scaled sums and one for the mins. */
    private static float dotQ4K(byte[] r, int blocks, Activation x) {
        short[] q8 = x.q;
        int group = x.gemm ? 2 : 8; // sub-blocks of 32 per float step
        float acc = 0;
        float accMin = 0;
        for (int b = 0; b < blocks; b++) {
            int o = b * 144;
            int qb = b * 256;
            float dd = half(r, o) * x.kd[b];
            float dm = half(r, o + 2) * x.kd[b];
            for (int g = 0; g < 8; g += group) {
                int isum = 0;
                int imin = 0;
                for (int j = g; j < g + group; j++) {
                    int s = 0;
                    for (int l = 0; l < 32; l++) {
                        s += KQuantBlocks.q4k(r, o, 32 * j + l) * q8[qb + 32 * j + l];
                    }
                    isum += KQuantBlocks.scaleMinK4(r, o + 4, j, 0) * s;
                    imin += KQuantBlocks.scaleMinK4(r, o + 4, j, 1) * (x.kbsums[b * 16 + 2 * j] + x.kbsums[b * 16 + 2 * j + 1]);
                }
                acc = Math.fma((float) isum, dd, acc);
                accMin = Math.fma((float) imin, dm, accMin);
            }
        }
        return acc - accMin;
    }

    /** Repacked q2_K_8x8: per super-block (gemv) or per 128 values (gemm) one fma for the scaled sums and one for the mins. */
    private static float dotQ2K(byte[] r, int blocks, Activation x) {
        short[] q8 = x.q;
        int group = x.gemm ? 8 : 16; // sub-blocks of 16 per float step
        float acc = 0;
        float accMin = 0;
        for (int b = 0; b < blocks; b++) {
            int o = b * 84;
            int qb = b * 256;
            float dd = half(r, o + 80) * x.kd[b];
            float dm = half(r, o + 82) * x.kd[b];
            for (int g = 0; g < 16; g += group) {
                int isum = 0;
                int imin = 0;
                for (int k = g; k < g + group; k++) {
                    int sc = r[o + k] & 0xFF;
                    int s = 0;
                    for (int l = 0; l < 16; l++) {
                        s += KQuantBlocks.q2k(r, o, 16 * k + l) * q8[qb + 16 * k + l];
                    }
                    isum += (sc & 0xF) * s;
                    imin += (sc >> 4) * x.kbsums[b * 16 + k];
                }
                acc = Math.fma((float) isum, dd, acc);
                accMin = Math.fma((float) imin, dm, accMin);
            }
        }
        return acc - accMin;
    }

    /** Q5_0 as {@code ggml_vec_dot_q5_0_q8_0} (AVX2): Q8_0's eight lanes. */
    private static float dotQ50(byte[] r, int blocks, Activation x) {
        short[] q = x.q;
        float[] lane = new float[8];
        for (int b = 0, o = 0; b < blocks; b++, o += 22) {
            float d = half(r, o) * x.d[b];
            for (int j = 0; j < 8; j++) {
                int isum = 0;
                for (int t = 0; t < 4; t++) {
                    isum += KQuantBlocks.q50(r, o, 4 * j + t) * q[b * 32 + 4 * j + t];
                }
                lane[j] = Math.fma(d, (float) isum, lane[j]);
            }
        }
        return ScalarKernels.hsum8(lane);
    }

    /** IQ4_NL and MXFP4 as their repacked 8x8 kernels: {@code acc = fma(isum, d_w * d_x, acc)} block after block. */
    private static float dotNibbleLut(GgmlType type, byte[] r, int blocks, Activation x) {
        short[] q = x.q;
        boolean mx = type == GgmlType.MXFP4;
        byte[] lut = mx ? KQuantBlocks.MXFP4_VALUES : KQuantBlocks.IQ4_NL_VALUES;
        int bb = type.blockBytes();
        float acc = 0;
        for (int b = 0, o = 0; b < blocks; b++, o += bb) {
            int qs = mx ? o + 1 : o + 2;
            int isum = 0;
            for (int j = 0; j < 32; j++) {
                isum += lut[KQuantBlocks.nibble(r, qs, j)] * q[b * 32 + j];
            }
            float dw = mx ? KQuantBlocks.e8m0Half(r[o] & 0xFF) : half(r, o);
            acc = Math.fma((float) isum, dw * x.d[b], acc);
        }
        return acc;
    }

    /**
     * BF16 rows against a BF16-rounded activation: {@code vdpbf16ps} adds each pair's odd product,
     * then its even one, to a float lane (the products of two bf16 values are exact in float32, so
     * each add is one fma). Decode ({@code ggml_vec_dot_bf16}): two 16-lane accumulators over steps
     * of 64 (values 0..31 and 32..63 of each step), each reduced, added in double with the tail.
     * Prefill (tinyBLAS, rows of a multiple of 32): one 16-lane accumulator over steps of 32, reduced.
     */
    private static float dotBf16(byte[] r, int cols, Activation a) {
        float[] x = a.f;
        if (a.order == DotOrder.TINYBLAS && cols % 32 == 0) {
            float[] acc = new float[16];
            for (int i = 0; i < cols; i += 32) {
                pairs(r, x, i, acc);
            }
            return CpuMath.reduce16(acc, 0);
        }
        float[] c1 = new float[16];
        float[] c2 = new float[16];
        int i = 0;
        for (; i + 64 <= cols; i += 64) {
            pairs(r, x, i, c1);
            pairs(r, x, i + 32, c2);
        }
        double sum = 0;
        sum += CpuMath.reduce16(c1, 0);
        sum += CpuMath.reduce16(c2, 0);
        for (; i < cols; i++) {
            sum += bf16(r, i) * x[i];
        }
        return (float) sum;
    }

    /** One {@code vdpbf16ps}: lane L += w[i+2L+1] x[i+2L+1], then += w[i+2L] x[i+2L]. */
    private static void pairs(byte[] r, float[] x, int i, float[] acc) {
        for (int l = 0; l < 16; l++) {
            int e = i + 2 * l;
            acc[l] = Math.fma(bf16(r, e + 1), x[e + 1], acc[l]);
            acc[l] = Math.fma(bf16(r, e), x[e], acc[l]);
        }
    }

    private static float bf16(byte[] r, int i) {
        return Float16.bf16ToFloat((short) ((r[2 * i] & 0xFF) | (r[2 * i + 1] << 8)));
    }
}
