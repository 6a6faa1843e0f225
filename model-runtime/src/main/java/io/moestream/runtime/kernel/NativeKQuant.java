package io.moestream.runtime.kernel;

import io.moestream.runtime.gguf.GgmlType;

import java.nio.ByteBuffer;
import java.util.Objects;

/**
 * The K-quant, Q5_0, IQ4_NL and MXFP4 row products in C, bit for bit {@link KQuantKernels}: used by
 * {@link KQuantKernels} when the native kernels are the chosen {@link Kernels} (so
 * {@code -Dmoestream.kernels=vector|scalar} turns them off too). Two sets: {@code src/main/c/kquant.h}
 * (AVX2, every type, one activation per call) and, on AVX-512 VNNI machines, {@code kquant_zmm.h}
 * for Q4_K, Q5_K and Q6_K in llama.cpp's gemv order (and Q4_K's gemm order), which reads each
 * weight once for up to {@link #MAX_ACTS} activations and takes them in the native Q8_K form that
 * {@link Activation} writes ({@link #quantize}), plus one-activation kernels over Q4_K and Q5_K rows
 * repacked sixteen at a time ({@link #repack}). Java checks every offset and array length before the call.
 */
final class NativeKQuant {

    /** Activations per call of the AVX-512 kernels (the C side's stack arrays). */
    static final int MAX_ACTS = 64;
    /** Rows per group of a repacked Q4_K or Q5_K matrix (kquant_zmm.h, {@code kz_q4k_repack}, {@code kz_q5k_repack}). */
    static final int GROUP_ROWS = 16;
    /** Set once the direct memory limit refused a repacked copy: later matrices keep their rows in place without asking again. */
    private static volatile boolean repackRefused;
    private static final ThreadLocal<float[]> OUT = ThreadLocal.withInitial(() -> new float[0]);
    private static final ThreadLocal<long[]> ADDRESSES = ThreadLocal.withInitial(() -> new long[MAX_ACTS]);
    private static volatile Boolean usable;
    private static volatile Boolean zmm;

    private NativeKQuant() {}

    /** Whether the native K-quant kernels run here (the library loaded, the CPU has AVX2, the native kernels chosen). */
    static boolean usable() {
        Boolean u = usable;
        if (u == null) {
            u = NativeKernels.loadedLevel() > 0 && Kernels.get() instanceof NativeKernels;
            usable = u;
        }
        return u;
    }

    /** Whether the AVX-512 kernels run here ({@link #usable}, AVX-512 VNNI, not limited by {@code moestream.kernels.native.level}). */
    static boolean zmm() {
        Boolean z = zmm;
        if (z == null) {
            z = usable() && NativeKernels.loadedLevel() >= 2 && Integer.getInteger("moestream.kernels.native.level", 2) >= 2;
            zmm = z;
        }
        return z;
    }

    /** Whether {@link #rows} takes this product. */
    static boolean takes(GgmlType type, ByteBuffer w, Activation x) {
        return switch (type) {
            case Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q5_0, IQ4_NL, MXFP4 -> w.isDirect() && x.type() == type;
            default -> false;
        };
    }

    /** Whether the AVX-512 kernels take products of {@code type} with {@code x}: its native form written, gemv order (or gemm for Q4_K). */
    private static boolean fast(GgmlType type, Activation x) {
        return (type == GgmlType.Q4_K || type == GgmlType.Q5_K || type == GgmlType.Q6_K) && x.nativeReady
                && (!x.gemm || type == GgmlType.Q4_K) && x.type() == type && zmm();
    }

    /** Bytes of the native Q8_K form of {@code n} values (a multiple of 256): quants twice (natural and nibble order), scales, sums of 16 and of 32. */
    static int nativeBytes(int n) {
        return 2 * n + 4 * (n / 256) + n / 8 + n / 16;
    }

    /** {@code out[outIndex + i]} = row i . x for {@code rows} rows of {@code type}, {@code rowBytes} apart from byte {@code off}. */
    static void rows(GgmlType type, ByteBuffer w, int off, int rowBytes, int rows, int cols, Activation x, float[] out,
                     int outIndex) {
        int bs = type.blockSize();
        int blocks = cols / bs;
        check(type, w, off, rowBytes, rows, cols, x);
        Objects.checkFromIndexSize(outIndex, rows, out.length);
        if (fast(type, x)) {
            long[] a = ADDRESSES.get();
            a[0] = x.nativeAddress;
            float[] r = results(rows);
            batch(type.id(), x.gemm ? 1 : 0, w, off, rowBytes, rows, blocks, a, 1, r);
            System.arraycopy(r, 0, out, outIndex, rows);
            return;
        }
        boolean q8k = bs == 256;
        float[] scales = q8k ? x.kd : x.d;
        if (x.q.length < cols || scales.length < blocks || (q8k && x.kbsums.length < blocks * 16)) {
            throw new IllegalArgumentException("activation arrays shorter than " + cols + " values");
        }
        rows(type.id(), w, off, rowBytes, rows, blocks, x.gemm ? 1 : 0, x.q, scales, x.kbsums, out, outIndex);
    }

    /**
     * Whether {@link #dotsRows} takes these {@code n} activations from {@code xs[from]}: the AVX-512
     * kernels run here and every activation is in its native form, all in gemv order (or, for Q4_K,
     * all in gemm order).
     */
    static boolean takesBatch(GgmlType type, ByteBuffer w, Activation[] xs, int from, int n) {
        if (!w.isDirect() || n < 1) {
            return false;
        }
        for (int k = from; k < from + n; k++) {
            if (!fast(type, xs[k]) || xs[k].gemm != xs[from].gemm) {
                return false;
            }
        }
        return true;
    }

    /** {@code out[from + k][outIndex + i]} = row i . xs[from + k]: each weight read once for up to {@link #MAX_ACTS} activations. */
    static void dotsRows(GgmlType type, ByteBuffer w, int off, int rowBytes, int rows, int cols, Activation[] xs, int from,
                         int n, float[][] out, int outIndex) {
        long[] a = ADDRESSES.get();
        for (int k = from; k < from + n; k++) {
            check(type, w, off, rowBytes, rows, cols, xs[k]);
            Objects.checkFromIndexSize(outIndex, rows, out[k].length);
            if (!fast(type, xs[k]) || xs[k].gemm != xs[from].gemm) {
                throw new IllegalArgumentException("activation " + k + " has no native Q8_K form for " + type
                        + " or another order than activation " + from);
            }
        }
        for (int k0 = from; k0 < from + n; k0 += MAX_ACTS) {
            int m = Math.min(MAX_ACTS, from + n - k0);
            for (int k = 0; k < m; k++) {
                a[k] = xs[k0 + k].nativeAddress;
            }
            float[] r = results(m * rows);
            batch(type.id(), xs[from].gemm ? 1 : 0, w, off, rowBytes, rows, cols / 256, a, m, r);
            for (int k = 0; k < m; k++) {
                System.arraycopy(r, k * rows, out[k0 + k], outIndex, rows);
            }
        }
    }

    /**
     * Q4_K or Q5_K rows sixteen at a time for the one-activation kernels ({@code kz_q4k_repack},
     * {@code kz_q5k_repack}: per group and super-block the 16 rows' d and dmin, their scales and mins
     * one byte each, Q5_K's fifth bits, then their quants side by side, 4 bytes of each row per 64),
     * in a 64-byte aligned direct buffer (memory outside the Java heap, freed with the buffer;
     * 2.3-2.8 % more than the rows it holds). Null for other types, where the AVX-512 kernels do not
     * run, for fewer than 16 rows, past 2 GiB, or once the direct memory limit has refused one. Rows
     * after the last full group are not copied.
     */
    static ByteBuffer repack(GgmlType type, ByteBuffer w, int off, int rowBytes, int rows, int cols) {
        int groups = rows / GROUP_ROWS;
        if (groupBlock(type) == 0 || !zmm() || groups == 0 || repackRefused || !w.isDirect() || cols <= 0
                || cols % 256 != 0 || rowBytes < type.bytesFor(cols)) {
            return null;
        }
        Objects.checkFromIndexSize(off, (long) rows * rowBytes <= Integer.MAX_VALUE ? rows * rowBytes : -1, w.capacity());
        long bytes = (long) groups * (cols / 256) * groupBlock(type);
        if (bytes > Integer.MAX_VALUE - 64) {
            return null;
        }
        ByteBuffer to;
        try {
            to = ByteBuffer.allocateDirect((int) bytes + 63).alignedSlice(64);
        } catch (OutOfMemoryError e) {
            repackRefused = true;
            return null;
        }
        repackK(type.id(), w, off, rowBytes, groups, cols / 256, to);
        return to;
    }

    /** Bytes per group of 16 rows and super-block of a {@link #repack} copy of {@code type}; 0 for a type without one. */
    private static int groupBlock(GgmlType type) {
        return switch (type) {
            case Q4_K -> 2368;
            case Q5_K -> 2880;
            default -> 0;
        };
    }

    /**
     * {@code out[outIndex + i]} = row first + i . x for {@code rows} rows (a multiple of 16, from a
     * group's first row) of a {@link #repack} copy of {@code cols} values of {@code type}; false
     * (nothing computed) when {@code x} has no native Q8_K form in gemv order or the AVX-512 kernels
     * do not run.
     */
    static boolean groupRows(GgmlType type, ByteBuffer repacked, int first, int rows, int cols, Activation x, float[] out,
                             int outIndex) {
        if (groupBlock(type) == 0 || x.gemm || !fast(type, x)) {
            return false;
        }
        long block = (long) (cols / 256) * groupBlock(type);
        if (!repacked.isDirect() || cols <= 0 || cols % 256 != 0 || x.length() != cols || first < 0 || rows <= 0
                || first % GROUP_ROWS != 0 || rows % GROUP_ROWS != 0
                || (first + (long) rows) / GROUP_ROWS * block > repacked.capacity()) {
            throw new IndexOutOfBoundsException("repacked " + type + " rows [" + first + ", " + (first + rows) + ") of "
                    + cols + " values (activation of " + x.length() + ") do not fit a buffer of " + repacked.capacity() + " bytes");
        }
        Objects.checkFromIndexSize(outIndex, rows, out.length);
        groupsK(type.id(), repacked, first / GROUP_ROWS * block, rows / GROUP_ROWS, cols / 256, x.nativeAddress, out,
                outIndex);
        return true;
    }

    private static void check(GgmlType type, ByteBuffer w, int off, int rowBytes, int rows, int cols, Activation x) {
        int bs = type.blockSize();
        if (cols % bs != 0 || rowBytes < type.bytesFor(cols) || x.length() != cols || x.type() != type) {
            throw new IllegalArgumentException(type + " rows of " + cols + " values, " + rowBytes + " bytes, activation of " + x.length());
        }
        Objects.checkFromIndexSize(off, (long) rows * rowBytes <= Integer.MAX_VALUE ? rows * rowBytes : -1, w.capacity());
    }

    private static float[] results(int size) {
        float[] r = OUT.get();
        if (r.length < size) {
            r = new float[size];
            OUT.set(r);
        }
        return r;
    }

    private static native void rows(int type, ByteBuffer w, long off, int rowBytes, int rows, int blocks, int gemm,
                                    short[] q, float[] kd, int[] bsums, float[] out, int outIndex);

    /**
     * The AVX-512 kernels: {@code out[k * rows + i]} = row i . activation k (native forms at
     * {@code xs[k]}), in gemm order when {@code gemm} is 1; 0 when the type has none.
     */
    private static native int batch(int type, int gemm, ByteBuffer w, long off, int rowBytes, int rows, int blocks, long[] xs, int n,
                                    float[] out);

    private static native void repackK(int type, ByteBuffer w, long off, int rowBytes, int groups, int blocks, ByteBuffer to);

    private static native void groupsK(int type, ByteBuffer repacked, long off, int groups, int blocks, long x, float[] out,
                                       int outIndex);

    /**
     * {@link Q8K#quantize} of {@code x[off .. off + n)} in C into {@code q}, {@code d}, {@code bsums}
     * and the native form at {@code to} ({@link #nativeBytes}); the caller checks the sizes.
     */
    static native void quantize(float[] x, int off, int n, short[] q, float[] d, int[] bsums, long to);
}
