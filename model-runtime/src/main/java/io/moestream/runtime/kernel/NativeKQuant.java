package io.moestream.runtime.kernel;

import io.moestream.runtime.gguf.GgmlType;

import java.nio.ByteBuffer;
import java.util.Objects;

/**
 * The K-quant, Q5_0, IQ4_NL and MXFP4 row products in C ({@code src/main/c/kquant.h}, AVX2), bit for bit
 * {@link KQuantKernels}: used by {@link KQuantKernels} when the native kernels are the chosen
 * {@link Kernels} (so {@code -Dmoestream.kernels=vector|scalar} turns them off too). Java checks
 * every offset and array length before the call.
 */
final class NativeKQuant {

    private static volatile Boolean usable;

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

    /** Whether {@link #rows} takes this product. */
    static boolean takes(GgmlType type, ByteBuffer w, Activation x) {
        return switch (type) {
            case Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q5_0, IQ4_NL, MXFP4 -> w.isDirect() && x.type() == type;
            default -> false;
        };
    }

    /** {@code out[outIndex + i]} = row i . x for {@code rows} rows of {@code type}, {@code rowBytes} apart from byte {@code off}. */
    static void rows(GgmlType type, ByteBuffer w, int off, int rowBytes, int rows, int cols, Activation x, float[] out,
                     int outIndex) {
        int bs = type.blockSize();
        int blocks = cols / bs;
        if (cols % bs != 0 || rowBytes < type.bytesFor(cols) || x.length() != cols || x.type() != type) {
            throw new IllegalArgumentException(type + " rows of " + cols + " values, " + rowBytes + " bytes, activation of " + x.length());
        }
        Objects.checkFromIndexSize(off, (long) rows * rowBytes <= Integer.MAX_VALUE ? rows * rowBytes : -1, w.capacity());
        Objects.checkFromIndexSize(outIndex, rows, out.length);
        boolean q8k = bs == 256;
        float[] scales = q8k ? x.kd : x.d;
        if (x.q.length < cols || scales.length < blocks || (q8k && x.kbsums.length < blocks * 16)) {
            throw new IllegalArgumentException("activation arrays shorter than " + cols + " values");
        }
        rows(type.id(), w, off, rowBytes, rows, blocks, x.gemm ? 1 : 0, x.q, scales, x.kbsums, out, outIndex);
    }

    private static native void rows(int type, ByteBuffer w, long off, int rowBytes, int rows, int blocks, int gemm,
                                    short[] q, float[] kd, int[] bsums, float[] out, int outIndex);
}
