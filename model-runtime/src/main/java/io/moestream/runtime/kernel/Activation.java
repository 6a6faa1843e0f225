package io.moestream.runtime.kernel;

import io.moestream.runtime.gguf.Float16;
import io.moestream.runtime.gguf.GgmlType;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Objects;

/**
 * One activation row prepared for products with weights of one {@link GgmlType}, the way llama.cpp
 * prepares {@code src1} ({@code vec_dot_type}): Q8_0 quants and scales for Q8_0/Q4_0 weights, values
 * rounded to F16 for F16 weights, to BF16 for BF16 weights, unchanged for F32. Prepared once per
 * matmul, read by every row (and thread) of it.
 *
 * <p>Q8_0 quantization is ggml's x86 {@code quantize_row_q8_0}: per 32 values {@code amax = max|x|},
 * {@code d = amax / 127} (stored as F16, so the product uses the F16-rounded value),
 * {@code q = round-half-even(x * (127 / amax))}.
 */
public final class Activation {

    private int n;
    private GgmlType type;
    /** How F32/F16 products with this row add up (llama.cpp's decode or prefill kernel). */
    DotOrder order = DotOrder.VEC_DOT;
    /** Q8_0 quants in natural order (as shorts so vector kernels can widen-multiply without a conversion). */
    short[] q = new short[0];
    /** Q8_0 quants interleaved per block as {@code x0, x16, x1, x17, ...}, matching Q4_0's nibble order. */
    short[] qi = new short[0];
    /** Q8_0 block scales, already rounded through F16. */
    float[] d = new float[0];
    /** Values for float weight types (rounded to the weight's float type). */
    float[] f = new float[0];
    /** K-quant weights: Q8_K block scales (one per 256 values; the quants are in {@link #q}). */
    float[] kd = new float[0];
    /** K-quant weights: Q8_K sums of every 16 quants. */
    int[] kbsums = new int[0];
    /** Repacked weight types: whether llama.cpp multiplies this row with its gemm kernel (else its gemv). */
    boolean gemm;
    /**
     * The form the native kernels read, written only once native kernels exist in this JVM, in a
     * direct buffer at {@link #nativeAddress}: for Q8_0 activations ({@link NativeKernels}) {@code n}
     * int8 quants, {@code n / 32} float scales, then {@code n / 32} int32 block sums of the quants;
     * for Q8_K ones the layout of {@link NativeKQuant#nativeBytes}. {@link #nativeReady} says it holds
     * the current values, and {@link #version} changes with every {@link #prepare}.
     */
    private ByteBuffer nativeForm;
    long nativeAddress;
    boolean nativeReady;
    int version;
    /** Set once by {@link NativeKernels}: from then on Q8_0 activations also carry their native form. */
    static volatile boolean writeNativeForm;

    /** Number of values. */
    public int length() {
        return n;
    }

    /** The weight type this activation was prepared for. */
    public GgmlType type() {
        return type;
    }

    /** The summation order of F32/F16 products with this row. */
    public DotOrder order() {
        return order;
    }

    /** Prepares {@code x[off .. off+n)} for a product with weights of {@code weightType}, summed in decode order. */
    public Activation prepare(float[] x, int off, int n, GgmlType weightType) {
        return prepare(x, off, n, weightType, DotOrder.VEC_DOT);
    }

    /**
     * Prepares {@code x[off .. off+n)} for a product with weights of {@code weightType}; F32/F16
     * products are summed in {@code order} (Q8_0/Q4_0 products are the same in both), except that a
     * row whose length is not a multiple of 16 is always summed in decode order (tinyBLAS declines it).
     */
    public Activation prepare(float[] x, int off, int n, GgmlType weightType, DotOrder order) {
        this.order = n % 16 == 0 ? order : DotOrder.VEC_DOT;
        this.gemm = false;
        this.nativeReady = false;
        this.version++;
        this.n = n;
        this.type = weightType;
        switch (weightType) {
            case Q8_0, Q4_0 -> quantizeQ8_0(x, off, n, weightType == GgmlType.Q4_0);
            case Q5_0, IQ4_NL, MXFP4 -> quantizeQ8_0(x, off, n, false);
            case Q2_K, Q3_K, Q4_K, Q5_K, Q6_K -> quantizeQ8K(x, off, n);
            case F16 -> {
                ensureFloats(n);
                for (int i = 0; i < n; i++) {
                    f[i] = Float16.toFloat(Float16.fromFloat(x[off + i]));
                }
            }
            case BF16 -> {
                ensureFloats(n);
                for (int i = 0; i < n; i++) {
                    f[i] = Float16.bf16ToFloat(Float16.toBf16(x[off + i]));
                }
            }
            case F32 -> {
                ensureFloats(n);
                System.arraycopy(x, off, f, 0, n);
            }
            default -> throw new IllegalArgumentException("no activation form for weight type " + weightType);
        }
        return this;
    }

    /** Dequantized value {@code i} (tests). */
    public float value(int i) {
        return switch (type) {
            case Q8_0, Q4_0, Q5_0, IQ4_NL, MXFP4 -> d[i / 32] * q[i];
            case Q2_K, Q3_K, Q4_K, Q5_K, Q6_K -> kd[i / Q8K.BLOCK] * q[i];
            default -> f[i];
        };
    }

    /**
     * Marks this row as one that llama.cpp multiplies with the gemm kernel of a repacked weight type
     * (Q4_K, Q2_K: the first {@code n - n % 4} rows of a multi-row MUL_MAT), whose float sums are
     * grouped differently from the gemv kernel's. Reset by every {@link #prepare}.
     */
    public Activation gemmOrder(boolean gemm) {
        this.gemm = gemm;
        return this;
    }

    /** Whether this row takes llama.cpp's gemm order for repacked weights ({@link #gemmOrder}). */
    public boolean gemm() {
        return gemm;
    }

    private void quantizeQ8K(float[] x, int off, int n) {
        if (q.length < n) {
            q = new short[n];
        }
        if (kd.length < n / Q8K.BLOCK) {
            kd = new float[n / Q8K.BLOCK];
            kbsums = new int[n / 16];
        }
        if (writeNativeForm && n % Q8K.BLOCK == 0) {
            // the same quantization in C, which also writes the form the native K-quant kernels read
            Objects.checkFromIndexSize(off, n, x.length);
            ensureNativeForm(NativeKQuant.nativeBytes(n));
            NativeKQuant.quantize(x, off, n, q, kd, kbsums, nativeAddress);
            nativeReady = true;
            return;
        }
        Q8K.quantize(x, off, n, q, kd, kbsums);
    }

    private void ensureFloats(int n) {
        if (f.length < n) {
            f = new float[n];
        }
    }

    private void quantizeQ8_0(float[] x, int off, int n, boolean interleave) {
        if (n % 32 != 0) {
            throw new IllegalArgumentException("Q8_0 activations need a multiple of 32 values, got " + n);
        }
        if (q.length < n || qi.length < n || d.length < n / 32) {
            q = new short[Math.max(n, q.length)];
            qi = new short[n];
            d = new float[n / 32];
        }
        if (writeNativeForm) {
            // the native kernels' library is loaded: the same quantization in C, ~10x faster
            Objects.checkFromIndexSize(off, n, x.length);
            ensureNativeForm(n + n / 4);
            NativeKernels.quantize(x, off, n, q, interleave ? qi : null, d, nativeAddress);
            nativeReady = true;
            return;
        }
        quantizeJava(x, off, n, interleave);
    }

    /** The Java quantization into q, qi and d (the reference the native one follows; tests call it directly). */
    void quantizeJava(float[] x, int off, int n, boolean interleave) {
        for (int b = 0; b < n / 32; b++) {
            int base = off + b * 32;
            float amax = 0;
            for (int j = 0; j < 32; j++) {
                amax = Math.max(amax, Math.abs(x[base + j]));
            }
            d[b] = Float16.toFloat(Float16.fromFloat(amax / 127f));
            float id = amax != 0 ? 127f / amax : 0f;
            for (int j = 0; j < 32; j++) {
                q[b * 32 + j] = (short) Math.rint(x[base + j] * id);
            }
            if (interleave) {
                for (int j = 0; j < 16; j++) {
                    qi[b * 32 + 2 * j] = q[b * 32 + j];
                    qi[b * 32 + 2 * j + 1] = q[b * 32 + 16 + j];
                }
            }
        }
    }

    /** Byte {@code i} of the native form (tests). */
    byte nativeByte(int i) {
        return nativeForm.get(i);
    }

    private void ensureNativeForm(int bytes) {
        if (nativeForm == null || nativeForm.capacity() < bytes) {
            // alignedSlice rounds both ends to the unit: room for a whole unit on either side
            nativeForm = ByteBuffer.allocateDirect((bytes + 63 & ~63) + 64).alignedSlice(64).order(ByteOrder.LITTLE_ENDIAN);
            nativeAddress = NativeKernels.address(nativeForm);
        }
    }
}
