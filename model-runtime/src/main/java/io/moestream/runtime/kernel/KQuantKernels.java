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
        if (NativeKQuant.takes(type, w, x) && NativeKQuant.usable()) {
            NativeKQuant.rows(type, w, off, rowBytes, rows, cols, x, out, outIndex);
            return;
        }
        javaRows(type, w, off, rowBytes, rows, cols, x, out, outIndex);
    }

    /** {@link #dotRows} in Java whatever the native kernels (tests compare the two). */
    static void javaRows(GgmlType type, ByteBuffer w, int off, int rowBytes, int rows, int cols, Activation x,
                         float[] out, int outIndex) {
        for (int i = 0; i < rows; i++) {
            out[outIndex + i] = dot(type, w, off + i * rowBytes, cols, x);
        }
    }

    /**
     * Q4_K or Q5_K rows in the native one-activation kernels' own layout (sixteen rows side by side
     * per super-block; {@link #dotRowsRepacked} reads it), or null where those kernels do not run,
     * for another type, or when the copy cannot be made. Rows after the last group of 16 are not in it.
     */
    public static ByteBuffer repack(GgmlType type, ByteBuffer w, int off, int rowBytes, int rows, int cols) {
        return NativeKQuant.repack(type, w, off, rowBytes, rows, cols);
    }

    /** Rows per group of a {@link #repack} copy: a call of {@link #dotRowsRepacked} starts at a multiple and takes a multiple. */
    public static int repackedGroupRows() {
        return NativeKQuant.GROUP_ROWS;
    }

    /**
     * {@link #dotRows} of rows [first, first + rows) of {@code type} read from a {@link #repack} copy;
     * false (nothing computed) when {@code x} is not in the form the repacked kernels take (gemm
     * order, no native form).
     */
    public static boolean dotRowsRepacked(GgmlType type, ByteBuffer repacked, int first, int rows, int cols, Activation x,
                                          float[] out, int outIndex) {
        return NativeKQuant.groupRows(type, repacked, first, rows, cols, x, out, outIndex);
    }

    /** Dots of {@code rows} rows with the {@code n} activations from {@code xs[from]}: {@code out[from + k][outIndex + i]}. */
    public static void dotsRows(GgmlType type, ByteBuffer w, int off, int rowBytes, int rows, int cols, Activation[] xs,
                                int from, int n, float[][] out, int outIndex) {
        // runs of activations in the same order (a prefill's gemm rows, then its last m % 4 in gemv order)
        for (int k = from, end; k < from + n; k = end) {
            end = k + 1;
            while (end < from + n && xs[end].gemm == xs[k].gemm) {
                end++;
            }
            if (NativeKQuant.takesBatch(type, w, xs, k, end - k)) {
                NativeKQuant.dotsRows(type, w, off, rowBytes, rows, cols, xs, k, end - k, out, outIndex);
                continue;
            }
            for (int j = k; j < end; j++) {
                dotRows(type, w, off, rowBytes, rows, cols, xs[j], out[j], outIndex);
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
            case Q3_K, Q5_K, Q6_K -> dotLanes(type, r, cols / 256, x);
            case Q4_K, Q2_K -> dotMins(type, r, cols / 256, x);
            case Q5_0 -> dotQ50(r, cols / 32, x);
            case IQ4_NL, MXFP4 -> dotNibbleLut(type, r, cols / 32, x);
            case BF16 -> dotBf16(r, cols, x);
            default -> throw new IllegalArgumentException("unsupported weight type " + type);
        };
    }

    /** Per-thread scratch: one block's unpacked quants and scales. */
    private static final class Scratch {
        final byte[] qw = new byte[256];
        final int[] sc = new int[16];
        final int[] lane = new int[8];
        final float[] acc = new float[8];
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    /**
     * Q3_K, Q5_K and Q6_K as {@code ggml_vec_dot_qN_K_q8_K} (AVX2): per super-block 8 integer lanes,
     * lane k = the sum over the 32-value chunks c of {@code scale(32c + 4k) * (products 32c+4k .. +3)}
     * (Q6_K minus {@code 32 * (bsums[2k] sc[2k] + bsums[2k+1] sc[2k+1])}), {@code acc_k = fma(d, lane_k, acc_k)},
     * then {@code hsum_float_8}; Q5_K adds {@code summs}, its mins times the 32-value activation sums.
     */
    private static float dotLanes(GgmlType type, byte[] r, int blocks, Activation x) {
        Scratch t = SCRATCH.get();
        byte[] qw = t.qw;
        int[] sc = t.sc;
        int[] lane = t.lane;
        float[] acc = t.acc;
        java.util.Arrays.fill(acc, 0f);
        short[] q8 = x.q;
        int bb = type.blockBytes();
        float summs = 0;
        for (int b = 0; b < blocks; b++) {
            int o = b * bb;
            int qb = b * 256;
            int bs = b * 16;
            KQuantBlocks.unpack(type, r, o, qw);
            float d;
            int offset = 0; // Q6_K's 32 per quant, through the bsums
            switch (type) {
                case Q6_K -> {
                    d = x.kd[b] * half(r, o + 208);
                    for (int i = 0; i < 16; i++) {
                        sc[i] = r[o + 192 + i];
                    }
                    offset = 32;
                }
                case Q5_K -> {
                    d = x.kd[b] * half(r, o);
                    float dmin = -x.kd[b] * half(r, o + 2);
                    int mins = 0;
                    for (int j = 0; j < 8; j++) {
                        int s = KQuantBlocks.scaleMinK4(r, o + 4, j, 0);
                        sc[2 * j] = s;
                        sc[2 * j + 1] = s;
                        mins += KQuantBlocks.scaleMinK4(r, o + 4, j, 1) * (x.kbsums[bs + 2 * j] + x.kbsums[bs + 2 * j + 1]);
                    }
                    // llama.cpp's scalar "summs += dmin * isum", which GCC contracts to one fma under -march=native
                    summs = Math.fma(dmin, (float) mins, summs);
                }
                default -> { // Q3_K
                    d = x.kd[b] * half(r, o + 108);
                    for (int i = 0; i < 16; i++) {
                        sc[i] = KQuantBlocks.scaleQ3K(r, o + 96, i);
                    }
                }
            }
            java.util.Arrays.fill(lane, 0);
            for (int v = 0; v < 256; v += 4) {
                int p = qw[v] * q8[qb + v] + qw[v + 1] * q8[qb + v + 1] + qw[v + 2] * q8[qb + v + 2] + qw[v + 3] * q8[qb + v + 3];
                lane[(v >> 2) & 7] += sc[v >> 4] * p;
            }
            for (int k = 0; k < 8; k++) {
                int sub = offset * (x.kbsums[bs + 2 * k] * sc[2 * k] + x.kbsums[bs + 2 * k + 1] * sc[2 * k + 1]);
                acc[k] = Math.fma(d, (float) (lane[k] - sub), acc[k]);
            }
        }
        float sum = ScalarKernels.hsum8(acc);
        return type == GgmlType.Q5_K ? sum + summs : sum;
    }

    /**
     * Q4_K and Q2_K as their repacked 8x8 kernels: one accumulator for the scaled sums and one for
     * the mins, {@code fma(isum, d_w * d_x, acc)} per super-block (gemv) or per 64 (Q4_K) / 128
     * (Q2_K) values (gemm); result {@code acc - acc_min}.
     */
    private static float dotMins(GgmlType type, byte[] r, int blocks, Activation x) {
        Scratch t = SCRATCH.get();
        byte[] qw = t.qw;
        int[] sc = t.sc;
        int[] mn = t.lane; // mins of 16-value groups would need 16: Q2_K reads them directly
        short[] q8 = x.q;
        boolean q4 = type == GgmlType.Q4_K;
        int bb = type.blockBytes();
        int step = x.gemm ? (q4 ? 64 : 128) : 256; // values per float step
        float acc = 0;
        float accMin = 0;
        for (int b = 0; b < blocks; b++) {
            int o = b * bb;
            int qb = b * 256;
            int bs = b * 16;
            KQuantBlocks.unpack(type, r, o, qw);
            float dd = half(r, q4 ? o : o + 80) * x.kd[b];
            float dm = half(r, q4 ? o + 2 : o + 82) * x.kd[b];
            if (q4) {
                for (int j = 0; j < 8; j++) {
                    sc[2 * j] = KQuantBlocks.scaleMinK4(r, o + 4, j, 0);
                    sc[2 * j + 1] = sc[2 * j];
                    mn[j] = KQuantBlocks.scaleMinK4(r, o + 4, j, 1);
                }
            } else {
                for (int i = 0; i < 16; i++) {
                    sc[i] = r[o + i] & 0xF;
                }
            }
            for (int g = 0; g < 256; g += step) {
                int isum = 0;
                int imin = 0;
                for (int i = g >> 4; i < (g + step) >> 4; i++) {
                    int p = 0;
                    for (int v = 16 * i; v < 16 * i + 16; v++) {
                        p += qw[v] * q8[qb + v];
                    }
                    isum += sc[i] * p;
                    imin += q4 ? ((i & 1) == 0 ? mn[i >> 1] * (x.kbsums[bs + i] + x.kbsums[bs + i + 1]) : 0)
                            : ((r[o + i] & 0xFF) >> 4) * x.kbsums[bs + i];
                }
                acc = Math.fma((float) isum, dd, acc);
                accMin = Math.fma((float) imin, dm, accMin);
            }
        }
        return acc - accMin;
    }

    /** Q5_0 as {@code ggml_vec_dot_q5_0_q8_0} (AVX2): Q8_0's eight lanes of four consecutive products, fma per block, {@code hsum_float_8}. */
    private static float dotQ50(byte[] r, int blocks, Activation x) {
        Scratch t = SCRATCH.get();
        byte[] qw = t.qw;
        float[] lane = t.acc;
        java.util.Arrays.fill(lane, 0f);
        short[] q = x.q;
        for (int b = 0, o = 0; b < blocks; b++, o += 22) {
            KQuantBlocks.unpack(GgmlType.Q5_0, r, o, qw);
            float d = half(r, o) * x.d[b];
            for (int j = 0; j < 8; j++) {
                int v = 4 * j;
                int isum = qw[v] * q[b * 32 + v] + qw[v + 1] * q[b * 32 + v + 1] + qw[v + 2] * q[b * 32 + v + 2]
                        + qw[v + 3] * q[b * 32 + v + 3];
                lane[j] = Math.fma(d, (float) isum, lane[j]);
            }
        }
        return ScalarKernels.hsum8(lane);
    }

    /** IQ4_NL and MXFP4 as their repacked 8x8 kernels: {@code acc = fma(isum, d_w * d_x, acc)} block after block. */
    private static float dotNibbleLut(GgmlType type, byte[] r, int blocks, Activation x) {
        byte[] qw = SCRATCH.get().qw;
        short[] q = x.q;
        boolean mx = type == GgmlType.MXFP4;
        int bb = type.blockBytes();
        float acc = 0;
        for (int b = 0, o = 0; b < blocks; b++, o += bb) {
            KQuantBlocks.unpack(type, r, o, qw);
            int isum = 0;
            for (int j = 0; j < 32; j++) {
                isum += qw[j] * q[b * 32 + j];
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
        if (a.order.tiled() && cols % 32 == 0) {
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
