package io.moestream.cuda;

import io.moestream.runtime.gguf.Float16;
import io.moestream.runtime.gguf.GgmlType;

import java.nio.ByteBuffer;

/**
 * Java twin of {@code blocks.cuh} and {@code matmul_blocks.cu}: the index math and arithmetic with
 * which the kernels read the block types kept in their GGUF layout (Q2_K..Q6_K, Q5_0, IQ4_NL,
 * MXFP4), step for step, so that tests without a GPU check it against the CPU's
 * {@code KQuantBlocks} / {@code KQuantKernels} / {@code Q8K}. Offsets are byte offsets into a
 * tensor's bytes; a row is {@code cols / values} consecutive blocks.
 */
public final class BlockDecoding {

    private static final byte[] IQ4_NL_VALUES = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
    private static final byte[] MXFP4_VALUES = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

    private BlockDecoding() {}

    /** Whether the device reads {@code type} in its GGUF block layout with these kernels. */
    public static boolean handles(GgmlType type) {
        return switch (type) {
            case Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q5_0, IQ4_NL, MXFP4 -> true;
            default -> false;
        };
    }

    /** Whether products quantize the activation to Q8_K (per 256) rather than Q8_0 (per 32). */
    public static boolean q8k(GgmlType type) {
        return type.blockSize() == 256;
    }

    /** Whether the type has mins ({@code value = d s q - dmin m}). */
    static boolean mins(GgmlType type) {
        return type == GgmlType.Q2_K || type == GgmlType.Q4_K || type == GgmlType.Q5_K;
    }

    private static int u8(ByteBuffer b, int at) {
        return b.get(at) & 0xFF;
    }

    private static float half(ByteBuffer b, int at) {
        return Float16.toFloat((short) (u8(b, at) | u8(b, at + 1) << 8));
    }

    static float e8m0Half(int e) {
        return Float.intBitsToFloat(e < 2 ? 0x00200000 << e : (e - 1) << 23);
    }

    private static int scaleMinK4(ByteBuffer b, int s, int j, int which) {
        if (j < 4) {
            return u8(b, s + j + 4 * which) & 63;
        }
        int hi = u8(b, s + j + 4);
        int lo = u8(b, s + j - 4 + 4 * which);
        return which == 0 ? (hi & 0xF) | ((lo >> 6) << 4) : (hi >> 4) | ((lo >> 6) << 4);
    }

    private static int scaleQ3K(ByteBuffer b, int s, int i) {
        int lo = i < 8 ? u8(b, s + i) & 0xF : u8(b, s + i - 8) >> 4;
        int hi = (u8(b, s + 8 + i % 4) >> (2 * (i / 4))) & 3;
        return (lo | hi << 4) - 32;
    }

    /** {@code sub_value}: integer quant {@code l} (0..31) of sub-block {@code j} of the block at byte {@code o}. */
    public static int subValue(GgmlType t, ByteBuffer b, int o, int j, int l) {
        return switch (t) {
            case Q4_K -> {
                int q = u8(b, o + 16 + 32 * (j >> 1) + l);
                yield (j & 1) != 0 ? q >> 4 : q & 0xF;
            }
            case Q5_K -> {
                int q = u8(b, o + 48 + 32 * (j >> 1) + l);
                yield ((j & 1) != 0 ? q >> 4 : q & 0xF) + (((u8(b, o + 16 + l) >> j) & 1) << 4);
            }
            case Q6_K -> {
                int h = j >> 2;
                int q = j & 3;
                int lo = (u8(b, o + 64 * h + l + 32 * (q & 1)) >> (4 * (q >> 1))) & 0xF;
                int hi = (u8(b, o + 128 + 32 * h + l) >> (2 * q)) & 3;
                yield (lo | hi << 4) - 32;
            }
            case Q3_K -> {
                int n = j >> 2;
                int jj = j & 3;
                int low = (u8(b, o + 32 + 32 * n + l) >> (2 * jj)) & 3;
                int high = (u8(b, o + l) >> (4 * n + jj)) & 1;
                yield low - (high != 0 ? 0 : 4);
            }
            case Q2_K -> (u8(b, o + 16 + 32 * (j >> 2) + l) >> (2 * (j & 3))) & 3;
            case Q5_0 -> {
                int q = u8(b, o + 6 + (l & 15));
                int h = (u8(b, o + 2 + (l >> 3)) >> (l & 7)) & 1;
                yield ((l < 16 ? q & 0xF : q >> 4) | h << 4) - 16;
            }
            case IQ4_NL -> {
                int q = u8(b, o + 2 + (l & 15));
                yield IQ4_NL_VALUES[l < 16 ? q & 0xF : q >> 4];
            }
            case MXFP4 -> {
                int q = u8(b, o + 1 + (l & 15));
                yield MXFP4_VALUES[l < 16 ? q & 0xF : q >> 4];
            }
            default -> throw new IllegalArgumentException("not a block type of the device: " + t);
        };
    }

    /** {@code SubScales}: the block's float scales and the sub-block's integer scales and mins (values 0..15, 16..31). */
    public record SubScales(float d, float dmin, int s0, int s1, int m0, int m1) {}

    /** {@code sub_scales} of sub-block {@code j} of the block at byte {@code o}. */
    public static SubScales subScales(GgmlType t, ByteBuffer b, int o, int j) {
        return switch (t) {
            case Q4_K, Q5_K -> {
                int s = scaleMinK4(b, o + 4, j, 0);
                int m = scaleMinK4(b, o + 4, j, 1);
                yield new SubScales(half(b, o), half(b, o + 2), s, s, m, m);
            }
            case Q6_K -> new SubScales(half(b, o + 208), 0f, b.get(o + 192 + 2 * j), b.get(o + 193 + 2 * j), 0, 0);
            case Q3_K -> new SubScales(half(b, o + 108), 0f, scaleQ3K(b, o + 96, 2 * j), scaleQ3K(b, o + 96, 2 * j + 1), 0, 0);
            case Q2_K -> new SubScales(half(b, o + 80), half(b, o + 82), u8(b, o + 2 * j) & 0xF, u8(b, o + 2 * j + 1) & 0xF,
                    u8(b, o + 2 * j) >> 4, u8(b, o + 2 * j + 1) >> 4);
            case MXFP4 -> new SubScales(e8m0Half(u8(b, o)), 0f, 1, 1, 0, 0);
            case Q5_0, IQ4_NL -> new SubScales(half(b, o), 0f, 1, 1, 0, 0);
            default -> throw new IllegalArgumentException("not a block type of the device: " + t);
        };
    }

    /** {@code dequant_value}: value {@code i} of the row starting at byte {@code row}, as the embedding kernels compute it. */
    public static float value(GgmlType t, ByteBuffer b, int row, int i) {
        int qk = t.blockSize();
        int o = row + (i / qk) * t.blockBytes();
        int v = i % qk;
        int j = v / 32;
        int l = v % 32;
        SubScales s = subScales(t, b, o, j);
        float q = subValue(t, b, o, j, l);
        int sc = l < 16 ? s.s0() : s.s1();
        if (mins(t)) {
            int m = l < 16 ? s.m0() : s.m1();
            return s.d() * sc * q - s.dmin() * m;
        }
        if (qk == 256) {
            return s.d() * sc * q;
        }
        return q * s.d();
    }

    /**
     * {@code quantize_q8_k} on {@code x[off .. off+n)}: per 256 values, lane k of the warp scans values
     * k, k+32, ..., the lanes' (|x|, index) maxima are merged by a butterfly preferring the larger
     * magnitude, then the lower index; quants into {@code q[0..n)}, scales into {@code d[0..n/256)}.
     */
    public static void quantizeQ8K(float[] x, int off, int n, byte[] q, float[] d) {
        float[] amax = new float[32];
        int[] at = new int[32];
        for (int blk = 0; blk < n / 256; blk++) {
            int base = off + blk * 256;
            for (int lane = 0; lane < 32; lane++) {
                amax[lane] = 0f;
                at[lane] = 256;
                for (int i = 0; i < 8; i++) {
                    int idx = lane + 32 * i;
                    float ax = Math.abs(x[base + idx]);
                    if (ax > amax[lane]) {
                        amax[lane] = ax;
                        at[lane] = idx;
                    }
                }
            }
            for (int o = 16; o > 0; o >>= 1) {
                float[] a2 = amax.clone();
                int[] i2 = at.clone();
                for (int lane = 0; lane < 32; lane++) {
                    float a = a2[lane ^ o];
                    int i = i2[lane ^ o];
                    if (a > amax[lane] || (a == amax[lane] && i < at[lane])) {
                        amax[lane] = a;
                        at[lane] = i;
                    }
                }
            }
            if (amax[0] == 0f) {
                java.util.Arrays.fill(q, blk * 256, blk * 256 + 256, (byte) 0);
                d[blk] = 0f;
                continue;
            }
            float iscale = -127f / x[base + at[0]];
            for (int i = 0; i < 256; i++) {
                q[blk * 256 + i] = (byte) Math.min(127, (int) Math.rint(iscale * x[base + i]));
            }
            d[blk] = 1f / iscale;
        }
    }

    /**
     * {@code tile_blocks} for one input row, then the warp's butterfly sum: the product of the row at
     * byte {@code row} ({@code cols} values) with an activation quantized for {@code t} ({@code xq}
     * quants, {@code xd} its Q8_K or Q8_0 scales).
     */
    public static float dot(GgmlType t, ByteBuffer w, int row, int cols, byte[] xq, float[] xd) {
        int subsPerBlock = t.blockSize() / 32;
        float[] acc = new float[32];
        for (int s = 0; s < cols / 32; s++) {
            int o = row + (s / subsPerBlock) * t.blockBytes();
            int j = s % subsPerBlock;
            SubScales sc = subScales(t, w, o, j);
            int p0 = 0, p1 = 0, a0 = 0, a1 = 0;
            for (int l = 0; l < 32; l++) {
                int x = xq[s * 32 + l];
                int p = subValue(t, w, o, j, l) * x;
                if (l < 16) {
                    p0 += p;
                    a0 += x;
                } else {
                    p1 += p;
                    a1 += x;
                }
            }
            float dx = xd[s / subsPerBlock];
            float v = (sc.d() * dx) * (float) (sc.s0() * p0 + sc.s1() * p1);
            if (mins(t)) {
                v -= (sc.dmin() * dx) * (float) (sc.m0() * a0 + sc.m1() * a1);
            }
            acc[s % 32] += v;
        }
        for (int o = 16; o > 0; o >>= 1) {
            float[] prev = acc.clone();
            for (int lane = 0; lane < 32; lane++) {
                acc[lane] = prev[lane] + prev[lane ^ o];
            }
        }
        return acc[0];
    }
}
