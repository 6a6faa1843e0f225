package io.moestream.runtime.kernel;

import io.moestream.runtime.gguf.Float16;
import io.moestream.runtime.gguf.GgmlType;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector API kernels (512-bit shapes; only loaded when {@code jdk.incubator.vector} is present and
 * the preferred vector size is 512 bits). Rows are read straight from the mapped buffer with
 * {@code fromByteBuffer} (Java 17-19; on newer JVMs the self-test in {@link Kernels} fails and the
 * scalar kernels are used).
 *
 * <p>Quantized blocks: the 32 weights are widened to 16-bit lanes and multiplied with the 16-bit
 * activation quants (each product fits 16 bits); adjacent products are summed into 16 int lanes
 * with {@code (p + (p << 16)) >> 16} on the pair viewed as one int (the low product's sign borrow
 * cancels), converted to float and accumulated with {@code fma(d_w * d_x)} per block, like ggml's
 * AVX2 path (which keeps 8 float lanes). Integer parts are exact, so only the float summation
 * order differs from {@link ScalarKernels}.
 */
final class VectorKernels extends Kernels {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_512;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_512;
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_512;
    private static final VectorSpecies<Short> S256 = ShortVector.SPECIES_256;
    private static final VectorSpecies<Byte> B128 = ByteVector.SPECIES_128;
    private static final VectorSpecies<Byte> B256 = ByteVector.SPECIES_256;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    VectorKernels() {
        if (FloatVector.SPECIES_PREFERRED.vectorBitSize() < 512) {
            throw new IllegalStateException("preferred vector size is " + FloatVector.SPECIES_PREFERRED.vectorBitSize()
                    + " bits; these kernels need 512");
        }
    }

    @Override
    public String name() {
        return "vector-512";
    }

    @Override
    public float dot(GgmlType type, ByteBuffer w, int off, int cols, Activation x) {
        switch (type) {
            case Q8_0: return dotQ8_0(w, off, cols / 32, x.q, x.d);
            case Q4_0: return dotQ4_0(w, off, cols / 32, x.qi, x.d);
            case F16: return dotF16(w, off, cols, x.f);
            case BF16: return dotBf16(w, off, cols, x.f);
            case F32: return dotF32(w, off, cols, x.f);
            default: throw new IllegalArgumentException("unsupported weight type " + type);
        }
    }

    @Override
    public void dots(GgmlType type, ByteBuffer w, int off, int cols, Activation[] xs, int n, float[][] out, int outIndex) {
        if (type != GgmlType.Q8_0 && type != GgmlType.Q4_0) {
            super.dots(type, w, off, cols, xs, n, out, outIndex);
            return;
        }
        int k = 0;
        for (; k + 3 < n; k += 4) {
            if (type == GgmlType.Q8_0) {
                dots4Q8_0(w, off, cols / 32, xs[k], xs[k + 1], xs[k + 2], xs[k + 3], out, k, outIndex);
            } else {
                dots4Q4_0(w, off, cols / 32, xs[k], xs[k + 1], xs[k + 2], xs[k + 3], out, k, outIndex);
            }
        }
        for (; k < n; k++) {
            out[k][outIndex] = dot(type, w, off, cols, xs[k]);
        }
    }

    /** Sums adjacent 16-bit products into 16 int lanes and converts them to float. */
    private static FloatVector pairSums(ShortVector products) {
        IntVector p = products.reinterpretAsInts();
        return (FloatVector) p.add(p.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16)
                .convertShape(VectorOperators.I2F, F, 0);
    }

    /** The 32 quants of the Q8_0 block at {@code off} widened to 16 bits. */
    private static ShortVector q8Weights(ByteBuffer w, int off) {
        return (ShortVector) ByteVector.fromByteBuffer(B256, w, off + 2, LE).convertShape(VectorOperators.B2S, S, 0);
    }

    /** The 32 quants of the Q4_0 block at {@code off} minus 8, as 16-bit lanes ordered lo0, hi0, lo1, hi1, ... */
    private static ShortVector q4Weights(ByteBuffer w, int off) {
        IntVector v = (IntVector) ByteVector.fromByteBuffer(B128, w, off + 2, LE).convertShape(VectorOperators.B2I, I, 0);
        return v.and(0xF).or(v.lanewise(VectorOperators.LSHL, 12).and(0xF0000)).reinterpretAsShorts().sub((short) 8);
    }

    private static float scale(ByteBuffer w, int off) {
        return Float16.toFloat(w.getShort(off));
    }

    private static float dotQ8_0(ByteBuffer w, int off, int blocks, short[] q, float[] d) {
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = FloatVector.zero(F);
        int b = 0;
        for (; b + 1 < blocks; b += 2, off += 68) {
            FloatVector s0 = pairSums(q8Weights(w, off).mul(ShortVector.fromArray(S, q, b * 32)));
            FloatVector s1 = pairSums(q8Weights(w, off + 34).mul(ShortVector.fromArray(S, q, b * 32 + 32)));
            acc0 = s0.fma(FloatVector.broadcast(F, scale(w, off) * d[b]), acc0);
            acc1 = s1.fma(FloatVector.broadcast(F, scale(w, off + 34) * d[b + 1]), acc1);
        }
        if (b < blocks) {
            acc0 = pairSums(q8Weights(w, off).mul(ShortVector.fromArray(S, q, b * 32))).fma(FloatVector.broadcast(F, scale(w, off) * d[b]), acc0);
        }
        return acc0.add(acc1).reduceLanes(VectorOperators.ADD);
    }

    private static float dotQ4_0(ByteBuffer w, int off, int blocks, short[] qi, float[] d) {
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = FloatVector.zero(F);
        int b = 0;
        for (; b + 1 < blocks; b += 2, off += 36) {
            FloatVector s0 = pairSums(q4Weights(w, off).mul(ShortVector.fromArray(S, qi, b * 32)));
            FloatVector s1 = pairSums(q4Weights(w, off + 18).mul(ShortVector.fromArray(S, qi, b * 32 + 32)));
            acc0 = s0.fma(FloatVector.broadcast(F, scale(w, off) * d[b]), acc0);
            acc1 = s1.fma(FloatVector.broadcast(F, scale(w, off + 18) * d[b + 1]), acc1);
        }
        if (b < blocks) {
            acc0 = pairSums(q4Weights(w, off).mul(ShortVector.fromArray(S, qi, b * 32))).fma(FloatVector.broadcast(F, scale(w, off) * d[b]), acc0);
        }
        return acc0.add(acc1).reduceLanes(VectorOperators.ADD);
    }

    private static void dots4Q8_0(ByteBuffer w, int off, int blocks, Activation x0, Activation x1, Activation x2,
                                  Activation x3, float[][] out, int k, int outIndex) {
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = FloatVector.zero(F);
        FloatVector acc2 = FloatVector.zero(F);
        FloatVector acc3 = FloatVector.zero(F);
        short[] q0 = x0.q;
        short[] q1 = x1.q;
        short[] q2 = x2.q;
        short[] q3 = x3.q;
        for (int b = 0; b < blocks; b++, off += 34) {
            ShortVector wq = q8Weights(w, off);
            float dw = scale(w, off);
            int i = b * 32;
            acc0 = pairSums(wq.mul(ShortVector.fromArray(S, q0, i))).fma(FloatVector.broadcast(F, dw * x0.d[b]), acc0);
            acc1 = pairSums(wq.mul(ShortVector.fromArray(S, q1, i))).fma(FloatVector.broadcast(F, dw * x1.d[b]), acc1);
            acc2 = pairSums(wq.mul(ShortVector.fromArray(S, q2, i))).fma(FloatVector.broadcast(F, dw * x2.d[b]), acc2);
            acc3 = pairSums(wq.mul(ShortVector.fromArray(S, q3, i))).fma(FloatVector.broadcast(F, dw * x3.d[b]), acc3);
        }
        out[k][outIndex] = acc0.reduceLanes(VectorOperators.ADD);
        out[k + 1][outIndex] = acc1.reduceLanes(VectorOperators.ADD);
        out[k + 2][outIndex] = acc2.reduceLanes(VectorOperators.ADD);
        out[k + 3][outIndex] = acc3.reduceLanes(VectorOperators.ADD);
    }

    private static void dots4Q4_0(ByteBuffer w, int off, int blocks, Activation x0, Activation x1, Activation x2,
                                  Activation x3, float[][] out, int k, int outIndex) {
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = FloatVector.zero(F);
        FloatVector acc2 = FloatVector.zero(F);
        FloatVector acc3 = FloatVector.zero(F);
        short[] q0 = x0.qi;
        short[] q1 = x1.qi;
        short[] q2 = x2.qi;
        short[] q3 = x3.qi;
        for (int b = 0; b < blocks; b++, off += 18) {
            ShortVector wq = q4Weights(w, off);
            float dw = scale(w, off);
            int i = b * 32;
            acc0 = pairSums(wq.mul(ShortVector.fromArray(S, q0, i))).fma(FloatVector.broadcast(F, dw * x0.d[b]), acc0);
            acc1 = pairSums(wq.mul(ShortVector.fromArray(S, q1, i))).fma(FloatVector.broadcast(F, dw * x1.d[b]), acc1);
            acc2 = pairSums(wq.mul(ShortVector.fromArray(S, q2, i))).fma(FloatVector.broadcast(F, dw * x2.d[b]), acc2);
            acc3 = pairSums(wq.mul(ShortVector.fromArray(S, q3, i))).fma(FloatVector.broadcast(F, dw * x3.d[b]), acc3);
        }
        out[k][outIndex] = acc0.reduceLanes(VectorOperators.ADD);
        out[k + 1][outIndex] = acc1.reduceLanes(VectorOperators.ADD);
        out[k + 2][outIndex] = acc2.reduceLanes(VectorOperators.ADD);
        out[k + 3][outIndex] = acc3.reduceLanes(VectorOperators.ADD);
    }

    /** 16 halves at {@code off} as floats: magnitude bits moved into a float and rescaled by 2^112 (exact, subnormals included), then the sign. */
    private static FloatVector halves(ByteBuffer w, int off) {
        IntVector h = (IntVector) ShortVector.fromByteBuffer(S256, w, off, LE).convertShape(VectorOperators.S2I, I, 0);
        FloatVector mag = h.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f);
        return mag.reinterpretAsInts().or(h.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
    }

    private static float dotF16(ByteBuffer w, int off, int cols, float[] x) {
        FloatVector acc = FloatVector.zero(F);
        int i = 0;
        for (; i + 15 < cols; i += 16) {
            acc = halves(w, off + 2 * i).fma(FloatVector.fromArray(F, x, i), acc);
        }
        float sum = acc.reduceLanes(VectorOperators.ADD);
        for (; i < cols; i++) {
            sum += Float16.toFloat(w.getShort(off + 2 * i)) * x[i];
        }
        return sum;
    }

    private static float dotBf16(ByteBuffer w, int off, int cols, float[] x) {
        FloatVector acc = FloatVector.zero(F);
        int i = 0;
        for (; i + 15 < cols; i += 16) {
            IntVector h = (IntVector) ShortVector.fromByteBuffer(S256, w, off + 2 * i, LE).convertShape(VectorOperators.S2I, I, 0);
            acc = h.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(F, x, i), acc);
        }
        float sum = acc.reduceLanes(VectorOperators.ADD);
        for (; i < cols; i++) {
            sum += Float16.bf16ToFloat(w.getShort(off + 2 * i)) * x[i];
        }
        return sum;
    }

    private static float dotF32(ByteBuffer w, int off, int cols, float[] x) {
        FloatVector acc = FloatVector.zero(F);
        int i = 0;
        for (; i + 15 < cols; i += 16) {
            acc = FloatVector.fromByteBuffer(F, w, off + 4 * i, LE).fma(FloatVector.fromArray(F, x, i), acc);
        }
        float sum = acc.reduceLanes(VectorOperators.ADD);
        for (; i < cols; i++) {
            sum += w.getFloat(off + 4 * i) * x[i];
        }
        return sum;
    }
}
