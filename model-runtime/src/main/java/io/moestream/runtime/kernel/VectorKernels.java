package io.moestream.runtime.kernel;

import io.moestream.runtime.gguf.Float16;
import io.moestream.runtime.gguf.GgmlType;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector API kernels (512-bit shapes; only loaded when {@code jdk.incubator.vector} is present and
 * the preferred vector size is 512 bits). Each row is first copied from the mapped buffer into a
 * heap array of the calling thread, and the kernels read that array (see the row loads).
 *
 * <p>Quantized blocks: the 32 weights are widened to 16-bit lanes and multiplied with the 16-bit
 * activation quants (each product fits 16 bits), then summed exactly in integer lanes; the float
 * part then follows llama.cpp's order (see {@link ScalarKernels}), so Q8_0/Q4_0/F16/F32 results
 * are bit for bit those of the scalar kernels, single or batched (BF16 agrees to float rounding).
 * Batched products (2 Q8_0 or 4 Q4_0 activations per pass) widen each block's weights once.
 */
final class VectorKernels extends Kernels {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_512;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_512;
    private static final VectorSpecies<Integer> I256 = IntVector.SPECIES_256;
    private static final VectorSpecies<Float> F256 = FloatVector.SPECIES_256;
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_512;
    private static final VectorSpecies<Byte> B128 = ByteVector.SPECIES_128;
    private static final VectorSpecies<Byte> B256 = ByteVector.SPECIES_256;
    private static final VectorSpecies<Byte> B512 = ByteVector.SPECIES_512;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final VarHandle SHORT_LE = MethodHandles.byteArrayViewVarHandle(short[].class, LE);
    private static final VarHandle FLOAT_LE = MethodHandles.byteArrayViewVarHandle(float[].class, LE);
    /** Swaps adjacent lanes (0-1, 2-3, ...): adding a vector to its swap puts each pair's sum in both lanes. */
    private static final VectorShuffle<Float> SWAP_ADJACENT = VectorShuffle.fromOp(F, i -> i ^ 1);
    private static final ThreadLocal<byte[][]> ROW = ThreadLocal.withInitial(() -> new byte[][] {new byte[0]});

    /** Q4_0 in 16 float lanes instead of llama.cpp's per-block fma chain: about 1.5x faster, not bit-exact. */
    private final boolean fastQ4;

    /*
     * The kernels are called through method handles held in instance fields, which C2 cannot see
     * through: each kernel is compiled on its own and never inlined into the dispatch methods or the
     * matmul loops. Inlined there, several Vector API kernels together overran C2's inlining node
     * budget now and then (NodeCountInliningCutoff), some vector operations were left as calls on
     * boxed vectors, and the same product ran 3-10x slower in some JVM runs than in others. A call
     * per row costs a few nanoseconds against hundreds for the row.
     */
    private final MethodHandle q8;
    private final MethodHandle q4;
    private final MethodHandle f16;
    private final MethodHandle f16Tiled;
    private final MethodHandle bf16;
    private final MethodHandle f32;
    private final MethodHandle f32Tiled;
    private final MethodHandle q8x2;
    private final MethodHandle q4x4;
    private final MethodHandle q8Rows4;
    private final MethodHandle q4Rows4;

    /** Rows a {@link #dotRows} kernel computes together (sharing the activation loads and the loop). */
    private static final int ROW_GROUP = 4;

    VectorKernels(boolean fastQ4) {
        this.fastQ4 = fastQ4;
        if (FloatVector.SPECIES_PREFERRED.vectorBitSize() < 512) {
            throw new IllegalStateException("preferred vector size is " + FloatVector.SPECIES_PREFERRED.vectorBitSize()
                    + " bits; these kernels need 512");
        }
        MethodType quantized = MethodType.methodType(float.class, byte[].class, int.class, int.class, short[].class, float[].class);
        MethodType floats = MethodType.methodType(float.class, byte[].class, int.class, int.class, float[].class);
        this.q8 = kernel("dotQ8_0", quantized);
        this.q4 = kernel(fastQ4 ? "dotQ4_0Lanes" : "dotQ4_0", quantized);
        this.f16 = kernel("dotF16VecDot", floats);
        this.f16Tiled = kernel("dotF16Tiled", floats);
        this.bf16 = kernel("dotBf16", floats);
        this.f32 = kernel("dotF32VecDot", floats);
        this.f32Tiled = kernel("dotF32Tiled", floats);
        this.q8x2 = kernel("dots2Q8_0", MethodType.methodType(void.class, byte[].class, int.class, int.class,
                Activation.class, Activation.class, float[][].class, int.class, int.class));
        MethodType rows = MethodType.methodType(void.class, byte[].class, int.class, int.class, short[].class, float[].class,
                float[].class, int.class);
        this.q8Rows4 = kernel("dotQ8_0Rows4", rows);
        this.q4Rows4 = kernel("dotQ4_0Rows4", rows);
        this.q4x4 = kernel("dots4Q4_0", MethodType.methodType(void.class, byte[].class, int.class, int.class,
                Activation.class, Activation.class, Activation.class, Activation.class, float[][].class, int.class, int.class));
    }

    private static MethodHandle kernel(String name, MethodType type) {
        try {
            return MethodHandles.lookup().findStatic(VectorKernels.class, name, type);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("kernel " + name + type + " not found", e);
        }
    }

    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException e) {
            return e;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new IllegalStateException(t);
    }

    @Override
    public String name() {
        return fastQ4 ? "vector-512-fast-q4" : "vector-512";
    }

    @Override
    public float dot(GgmlType type, ByteBuffer buffer, int offset, int cols, Activation x) {
        byte[] w = rowCopy(buffer, offset, (int) type.bytesFor(cols));
        int off = 0;
        try {
            switch (type) {
                case Q8_0: return (float) q8.invokeExact(w, off, cols / 32, x.q, x.d);
                case Q4_0: return (float) q4.invokeExact(w, off, cols / 32, x.qi, x.d);
                case F16: return (float) (x.order.tiled() ? f16Tiled : f16).invokeExact(w, off, cols, x.f);
                case BF16: return (float) bf16.invokeExact(w, off, cols, x.f);
                case F32: return (float) (x.order.tiled() ? f32Tiled : f32).invokeExact(w, off, cols, x.f);
                default: throw new IllegalArgumentException("unsupported weight type " + type);
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public void dotRows(GgmlType type, ByteBuffer buffer, int offset, int rowBytes, int rows, int cols, Activation x,
                        float[] out, int outIndex) {
        if ((type != GgmlType.Q8_0 && (type != GgmlType.Q4_0 || fastQ4)) || rows < ROW_GROUP) {
            super.dotRows(type, buffer, offset, rowBytes, rows, cols, x, out, outIndex);
            return;
        }
        int i = 0;
        try {
            for (; i + ROW_GROUP <= rows; i += ROW_GROUP) {
                byte[] w = rowCopy(buffer, offset + i * rowBytes, ROW_GROUP * rowBytes);
                if (type == GgmlType.Q8_0) {
                    q8Rows4.invokeExact(w, rowBytes, cols / 32, x.q, x.d, out, outIndex + i);
                } else {
                    q4Rows4.invokeExact(w, rowBytes, cols / 32, x.qi, x.d, out, outIndex + i);
                }
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
        super.dotRows(type, buffer, offset + i * rowBytes, rowBytes, rows - i, cols, x, out, outIndex + i);
    }

    @Override
    public void dots(GgmlType type, ByteBuffer buffer, int offset, int cols, Activation[] xs, int n, float[][] out, int outIndex) {
        if (type != GgmlType.Q8_0 && type != GgmlType.Q4_0) {
            super.dots(type, buffer, offset, cols, xs, n, out, outIndex);
            return;
        }
        byte[] w = rowCopy(buffer, offset, (int) type.bytesFor(cols));
        int off = 0;
        int k = 0;
        int blocks = cols / 32;
        try {
            if (type == GgmlType.Q8_0) {
                for (; k + 1 < n; k += 2) {
                    q8x2.invokeExact(w, off, blocks, xs[k], xs[k + 1], out, k, outIndex);
                }
            } else if (!fastQ4) {
                for (; k + 3 < n; k += 4) {
                    q4x4.invokeExact(w, off, blocks, xs[k], xs[k + 1], xs[k + 2], xs[k + 3], out, k, outIndex);
                }
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
        try {
            for (; k < n; k++) {
                out[k][outIndex] = type == GgmlType.Q8_0 ? (float) q8.invokeExact(w, off, blocks, xs[k].q, xs[k].d)
                        : (float) q4.invokeExact(w, off, blocks, xs[k].qi, xs[k].d);
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }


    /*
     * Row loads. Each row is copied from the mapped buffer into this thread's heap array first
     * (one bulk copy), and the kernels read the array. Reading the mapped buffer in place
     * (fromByteBuffer on Java 17-19; Java 20+ removed it) paid the buffer's bounds, byte-order and
     * liveness checks on every load and every block scale, and read memory one 32-byte load at a
     * time: per thread the copy-then-compute row is 1.6x faster (docs/benchmarks.md).
     */
    private static ByteVector bytes(VectorSpecies<Byte> species, byte[] w, int off) {
        return ByteVector.fromArray(species, w, off);
    }

    /** 16 little-endian halves at {@code off}. */
    private static ShortVector halves16(byte[] w, int off) {
        return ByteVector.fromArray(B256, w, off).reinterpretAsShorts();
    }

    /** 16 little-endian floats at {@code off}. */
    private static FloatVector floats16(byte[] w, int off) {
        return ByteVector.fromArray(B512, w, off).reinterpretAsFloats();
    }

    private static short half(byte[] w, int off) {
        return (short) SHORT_LE.get(w, off);
    }

    /** {@code bytes} bytes of {@code w} from {@code off}, copied into this thread's row array. */
    private static byte[] rowCopy(ByteBuffer w, int off, int bytes) {
        byte[][] holder = ROW.get();
        byte[] r = holder[0];
        if (r.length < bytes) {
            r = new byte[bytes];
            holder[0] = r;
        }
        w.get(off, r, 0, bytes);
        return r;
    }

    /**
     * Sums adjacent 16-bit products into 16 int lanes: the pair viewed as one int is
     * {@code hi * 2^16 + lo} up to the low half's sign borrow, which {@code (p + (p << 16)) >> 16}
     * cancels. Exact while |lo + hi| < 2^15 (Q8_0: |q| <= 127 on one side, <= 128 on the other).
     */
    private static IntVector pairSums(ShortVector products) {
        IntVector p = products.reinterpretAsInts();
        return p.add(p.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
    }

    /** The 32 quants of the Q4_0 block at {@code off} minus 8, as 16-bit lanes ordered lo0, hi0, lo1, hi1, ... */
    private static ShortVector q4Weights(byte[] w, int off) {
        IntVector v = (IntVector) bytes(B128, w, off + 2).convertShape(VectorOperators.B2I, I, 0);
        return v.and(0xF).or(v.lanewise(VectorOperators.LSHL, 12).and(0xF0000)).reinterpretAsShorts().sub((short) 8);
    }

    private static float scale(byte[] w, int off) {
        return Float16.toFloat(half(w, off));
    }

    /** ggml's 8 lanes: lane j = products 4j..4j+3 of the block (the pair-sum trick once more, on longs), as floats. */
    private static FloatVector quadSums(ShortVector products) {
        LongVector l = pairSums(products).reinterpretAsLongs();
        IntVector quads = (IntVector) l.add(l.lanewise(VectorOperators.LSHL, 32)).lanewise(VectorOperators.ASHR, 32)
                .convertShape(VectorOperators.L2I, I256, 0);
        return (FloatVector) quads.convertShape(VectorOperators.I2F, F256, 0);
    }

    /**
     * {@link #quadSums} doubled: lanes 2j and 2j+1 both hold ggml's lane j, as 16 floats (no 64-bit
     * shifts or narrowing); an accumulator over these holds ggml's lane j in lane 2j. Faster in the
     * batched kernel (16 sequences: 1.10x), slower in the single-activation ones (docs/benchmarks.md).
     */
    private static FloatVector quadSumsDoubled(ShortVector products) {
        FloatVector pairs = (FloatVector) pairSums(products).convertShape(VectorOperators.I2F, F, 0);
        return pairs.add(pairs.rearrange(SWAP_ADJACENT));
    }

    /** {@link #hsum8} of a doubled accumulator (ggml's lane j in lane 2j). */
    private static float hsum8Doubled(FloatVector acc) {
        return ((acc.lane(0) + acc.lane(8)) + (acc.lane(4) + acc.lane(12))) + ((acc.lane(2) + acc.lane(10)) + (acc.lane(6) + acc.lane(14)));
    }

    /** The 32 quants of the Q8_0 block at {@code off} widened to 16 bits. */
    private static ShortVector q8Weights(byte[] w, int off) {
        return (ShortVector) bytes(B256, w, off + 2).convertShape(VectorOperators.B2S, S, 0);
    }

    /** {@code vec_dot_q8_0_q8_0}'s order, bit for bit as {@link ScalarKernels}: 8 lanes of fma, then {@code hsum_float_8}. */
    private static float dotQ8_0(byte[] w, int off, int blocks, short[] q, float[] d) {
        FloatVector acc = FloatVector.zero(F256);
        for (int b = 0; b < blocks; b++, off += 34) {
            FloatVector s = quadSums(q8Weights(w, off).mul(ShortVector.fromArray(S, q, b * 32)));
            acc = FloatVector.broadcast(F256, scale(w, off) * d[b]).fma(s, acc);
        }
        return hsum8(acc);
    }

    /*
     * Row groups: the rows are an inner loop with accumulators in a small array rather than four
     * copies of the row code, which would overrun C2's inlining budget (NodeCountInliningCutoff)
     * and leave vector operations as calls on boxed vectors. (The accumulators also stay in an
     * array across the loop: a vector held in a loop phi can lose its exact type, and operations
     * on it then fall back to the Java implementation.)
     */

    /** {@link #dotQ8_0} of four rows {@code rowBytes} apart at the start of {@code w}, into {@code out[o .. o+4)}. */
    private static void dotQ8_0Rows4(byte[] w, int rowBytes, int blocks, short[] q, float[] d, float[] out, int o) {
        float[] acc = new float[ROW_GROUP * 8];
        for (int b = 0, off = 0; b < blocks; b++, off += 34) {
            ShortVector x = ShortVector.fromArray(S, q, b * 32);
            float db = d[b];
            for (int r = 0, ro = off; r < ROW_GROUP; r++, ro += rowBytes) {
                FloatVector s = quadSums(q8Weights(w, ro).mul(x));
                FloatVector.broadcast(F256, scale(w, ro) * db).fma(s, FloatVector.fromArray(F256, acc, r * 8)).intoArray(acc, r * 8);
            }
        }
        for (int r = 0; r < ROW_GROUP; r++) {
            out[o + r] = ((acc[r * 8] + acc[r * 8 + 4]) + (acc[r * 8 + 2] + acc[r * 8 + 6]))
                    + ((acc[r * 8 + 1] + acc[r * 8 + 5]) + (acc[r * 8 + 3] + acc[r * 8 + 7]));
        }
    }

    /** {@link #dotQ4_0} of four rows {@code rowBytes} apart at the start of {@code w}, into {@code out[o .. o+4)}. */
    private static void dotQ4_0Rows4(byte[] w, int rowBytes, int blocks, short[] qi, float[] d, float[] out, int o) {
        float[] acc = new float[ROW_GROUP];
        int b = 0;
        int off = 0;
        for (; b + 1 < blocks; b += 2, off += 36) {
            ShortVector x0 = ShortVector.fromArray(S, qi, b * 32);
            ShortVector x1 = ShortVector.fromArray(S, qi, b * 32 + 32);
            float d0 = d[b];
            float d1 = d[b + 1];
            for (int r = 0, ro = off; r < ROW_GROUP; r++, ro += rowBytes) {
                int both = twoQ4Sums(w, ro, x0, x1);
                int s0 = (short) both;
                float a = Math.fma((float) s0, scale(w, ro) * d0, acc[r]);
                acc[r] = Math.fma((float) ((both - s0) >> 16), scale(w, ro + 18) * d1, a);
            }
        }
        if (b < blocks) {
            ShortVector x0 = ShortVector.fromArray(S, qi, b * 32);
            for (int r = 0, ro = off; r < ROW_GROUP; r++, ro += rowBytes) {
                acc[r] = Math.fma((float) oneQ4Sum(w, ro, x0), scale(w, ro) * d[b], acc[r]);
            }
        }
        System.arraycopy(acc, 0, out, o, ROW_GROUP);
    }

    private static int oneQ4Sum(byte[] w, int off, ShortVector x) {
        return pairSums(q4Weights(w, off).mul(x)).reduceLanes(VectorOperators.ADD);
    }

    /** {@code sum(block at off) + 2^16 * sum(block at off + 18)} against activation blocks {@code x0, x1}. */
    private static int twoQ4Sums(byte[] w, int off, ShortVector x0, ShortVector x1) {
        IntVector p0 = pairSums(q4Weights(w, off).mul(x0));
        IntVector p1 = pairSums(q4Weights(w, off + 18).mul(x1));
        return p0.add(p1.lanewise(VectorOperators.LSHL, 16)).reduceLanes(VectorOperators.ADD);
    }

    private static float hsum8(FloatVector acc) {
        return ((acc.lane(0) + acc.lane(4)) + (acc.lane(2) + acc.lane(6))) + ((acc.lane(1) + acc.lane(5)) + (acc.lane(3) + acc.lane(7)));
    }

    /**
     * The repacked-Q4_0 gemv order, bit for bit as {@link ScalarKernels}: per block an exact integer
     * sum, then {@code acc = fma(isum, d_w * d_x, acc)}. Two blocks share one horizontal add: a
     * Q4_0 block sum is below 2^15 in magnitude, so block b+1's lanes ride in the upper 16 bits.
     */
    private static float dotQ4_0(byte[] w, int off, int blocks, short[] qi, float[] d) {
        float acc = 0;
        int b = 0;
        for (; b + 1 < blocks; b += 2, off += 36) {
            int both = twoQ4Sums(w, off, qi, b * 32);
            int s0 = (short) both;
            int s1 = (both - s0) >> 16;
            acc = Math.fma((float) s0, scale(w, off) * d[b], acc);
            acc = Math.fma((float) s1, scale(w, off + 18) * d[b + 1], acc);
        }
        if (b < blocks) {
            int s0 = oneQ4Sum(w, off, ShortVector.fromArray(S, qi, b * 32));
            acc = Math.fma((float) s0, scale(w, off) * d[b], acc);
        }
        return acc;
    }

    /** Q4_0 with 16 float lanes (two accumulators), one horizontal add per row. */
    private static float dotQ4_0Lanes(byte[] w, int off, int blocks, short[] qi, float[] d) {
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = FloatVector.zero(F);
        int b = 0;
        for (; b + 1 < blocks; b += 2, off += 36) {
            FloatVector s0 = (FloatVector) pairSums(q4Weights(w, off).mul(ShortVector.fromArray(S, qi, b * 32)))
                    .convertShape(VectorOperators.I2F, F, 0);
            FloatVector s1 = (FloatVector) pairSums(q4Weights(w, off + 18).mul(ShortVector.fromArray(S, qi, b * 32 + 32)))
                    .convertShape(VectorOperators.I2F, F, 0);
            acc0 = s0.fma(FloatVector.broadcast(F, scale(w, off) * d[b]), acc0);
            acc1 = s1.fma(FloatVector.broadcast(F, scale(w, off + 18) * d[b + 1]), acc1);
        }
        if (b < blocks) {
            FloatVector s0 = (FloatVector) pairSums(q4Weights(w, off).mul(ShortVector.fromArray(S, qi, b * 32)))
                    .convertShape(VectorOperators.I2F, F, 0);
            acc0 = s0.fma(FloatVector.broadcast(F, scale(w, off) * d[b]), acc0);
        }
        return acc0.add(acc1).reduceLanes(VectorOperators.ADD);
    }

    /** {@link #twoQ4Sums(byte[], int, ShortVector, ShortVector)} against activation blocks at {@code qi[i]} and {@code qi[i + 32]}. */
    private static int twoQ4Sums(byte[] w, int off, short[] qi, int i) {
        return twoQ4Sums(w, off, ShortVector.fromArray(S, qi, i), ShortVector.fromArray(S, qi, i + 32));
    }

    private static void dots2Q8_0(byte[] w, int off, int blocks, Activation x0, Activation x1, float[][] out, int k, int outIndex) {
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = FloatVector.zero(F);
        short[] q0 = x0.q;
        short[] q1 = x1.q;
        for (int b = 0; b < blocks; b++, off += 34) {
            ShortVector wq = q8Weights(w, off);
            float dw = scale(w, off);
            acc0 = FloatVector.broadcast(F, dw * x0.d[b]).fma(quadSumsDoubled(wq.mul(ShortVector.fromArray(S, q0, b * 32))), acc0);
            acc1 = FloatVector.broadcast(F, dw * x1.d[b]).fma(quadSumsDoubled(wq.mul(ShortVector.fromArray(S, q1, b * 32))), acc1);
        }
        out[k][outIndex] = hsum8Doubled(acc0);
        out[k + 1][outIndex] = hsum8Doubled(acc1);
    }

    private static void dots4Q4_0(byte[] w, int off, int blocks, Activation x0, Activation x1, Activation x2,
                                  Activation x3, float[][] out, int k, int outIndex) {
        float acc0 = 0;
        float acc1 = 0;
        float acc2 = 0;
        float acc3 = 0;
        short[] q0 = x0.qi;
        short[] q1 = x1.qi;
        short[] q2 = x2.qi;
        short[] q3 = x3.qi;
        for (int b = 0; b < blocks; b++, off += 18) {
            ShortVector wq = q4Weights(w, off);
            float dw = scale(w, off);
            int i = b * 32;
            // four activations' block sums packed two per horizontal add, as in dotQ4_0
            int s01 = pairSums(wq.mul(ShortVector.fromArray(S, q0, i)))
                    .add(pairSums(wq.mul(ShortVector.fromArray(S, q1, i))).lanewise(VectorOperators.LSHL, 16))
                    .reduceLanes(VectorOperators.ADD);
            int s23 = pairSums(wq.mul(ShortVector.fromArray(S, q2, i)))
                    .add(pairSums(wq.mul(ShortVector.fromArray(S, q3, i))).lanewise(VectorOperators.LSHL, 16))
                    .reduceLanes(VectorOperators.ADD);
            int s0 = (short) s01;
            int s2 = (short) s23;
            acc0 = Math.fma((float) s0, dw * x0.d[b], acc0);
            acc1 = Math.fma((float) ((s01 - s0) >> 16), dw * x1.d[b], acc1);
            acc2 = Math.fma((float) s2, dw * x2.d[b], acc2);
            acc3 = Math.fma((float) ((s23 - s2) >> 16), dw * x3.d[b], acc3);
        }
        out[k][outIndex] = acc0;
        out[k + 1][outIndex] = acc1;
        out[k + 2][outIndex] = acc2;
        out[k + 3][outIndex] = acc3;
    }

    /** 16 halves at {@code off} as floats: magnitude bits moved into a float and rescaled by 2^112 (exact, subnormals included), then the sign. */
    private static FloatVector halves(byte[] w, int off) {
        IntVector h = (IntVector) halves16(w, off).convertShape(VectorOperators.S2I, I, 0);
        FloatVector mag = h.and(0x7FFF).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f);
        return mag.reinterpretAsInts().or(h.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
    }

    /** F16 rows in tinyBLAS order (bit for bit as {@link ScalarKernels}): one 16-lane fma accumulator, one reduction. */
    private static float dotF16Tiled(byte[] w, int off, int cols, float[] x) {
        FloatVector acc = FloatVector.zero(F);
        for (int i = 0; i < cols; i += 16) {
            acc = halves(w, off + 2 * i).fma(FloatVector.fromArray(F, x, i), acc);
        }
        return reduce16(acc);
    }

    /** {@code ggml_vec_dot_f16}: 4 x 16 lanes over steps of 64, reduced (a0 + a2) + (a1 + a3), tail in double. */
    private static float dotF16VecDot(byte[] w, int off, int cols, float[] x) {
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = FloatVector.zero(F);
        FloatVector a2 = FloatVector.zero(F);
        FloatVector a3 = FloatVector.zero(F);
        int n = cols & ~63;
        for (int i = 0; i < n; i += 64) {
            a0 = halves(w, off + 2 * i).fma(FloatVector.fromArray(F, x, i), a0);
            a1 = halves(w, off + 2 * i + 32).fma(FloatVector.fromArray(F, x, i + 16), a1);
            a2 = halves(w, off + 2 * i + 64).fma(FloatVector.fromArray(F, x, i + 32), a2);
            a3 = halves(w, off + 2 * i + 96).fma(FloatVector.fromArray(F, x, i + 48), a3);
        }
        double sum = n > 0 ? reduce16(a0.add(a2).add(a1.add(a3))) : 0.0;
        for (int i = n; i < cols; i++) {
            sum += Float16.toFloat(half(w, off + 2 * i)) * x[i];
        }
        return (float) sum;
    }

    /** GCC's {@code _mm512_reduce_add_ps} order (see {@link CpuMath#reduce16}). */
    private static float reduce16(FloatVector v) {
        // GCC's _mm512_reduce_add_ps: halves, quarters, lanes two apart, neighbours (float addition
        // commutes, so each rotation-and-add gives lane k the same sum as a[k + w] + a[k])
        FloatVector t = v.add(v.rearrange(ROTATE_8));
        FloatVector u = t.add(t.rearrange(ROTATE_4));
        FloatVector w = u.add(u.rearrange(ROTATE_2));
        return w.add(w.rearrange(ROTATE_1)).lane(0);
    }

    private static final VectorShuffle<Float> ROTATE_8 = VectorShuffle.fromOp(F, i -> (i + 8) & 15);
    private static final VectorShuffle<Float> ROTATE_4 = VectorShuffle.fromOp(F, i -> (i + 4) & 15);
    private static final VectorShuffle<Float> ROTATE_2 = VectorShuffle.fromOp(F, i -> (i + 2) & 15);
    private static final VectorShuffle<Float> ROTATE_1 = VectorShuffle.fromOp(F, i -> (i + 1) & 15);

    private static float dotBf16(byte[] w, int off, int cols, float[] x) {
        FloatVector acc = FloatVector.zero(F);
        int i = 0;
        for (; i + 15 < cols; i += 16) {
            IntVector h = (IntVector) halves16(w, off + 2 * i).convertShape(VectorOperators.S2I, I, 0);
            acc = h.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(F, x, i), acc);
        }
        float sum = acc.reduceLanes(VectorOperators.ADD);
        for (; i < cols; i++) {
            sum += Float16.bf16ToFloat(half(w, off + 2 * i)) * x[i];
        }
        return sum;
    }

    /** F32 rows in tinyBLAS order (bit for bit as {@link ScalarKernels}): one 16-lane fma accumulator, one reduction. */
    private static float dotF32Tiled(byte[] w, int off, int cols, float[] x) {
        FloatVector acc = FloatVector.zero(F);
        for (int i = 0; i < cols; i += 16) {
            acc = floats16(w, off + 4 * i).fma(FloatVector.fromArray(F, x, i), acc);
        }
        return reduce16(acc);
    }

    @Override
    public void scoresF32(float[] k, int headDim, int from, int to, float[] q, int qOff, float scale, float[] att, int base) {
        if (headDim == 128) {
            scores128(k, from, to, q, qOff, scale, att, base);
            return;
        }
        int n = headDim & ~63;
        int plain = n + ((headDim - n) & ~7);
        for (int t = from; t < to; t++) {
            int off = t * headDim;
            float sum = 0f;
            if (n > 0) {
                FloatVector a0 = FloatVector.zero(F);
                FloatVector a1 = FloatVector.zero(F);
                FloatVector a2 = FloatVector.zero(F);
                FloatVector a3 = FloatVector.zero(F);
                for (int i = 0; i < n; i += 64) {
                    a0 = FloatVector.fromArray(F, k, off + i).fma(FloatVector.fromArray(F, q, qOff + i), a0);
                    a1 = FloatVector.fromArray(F, k, off + i + 16).fma(FloatVector.fromArray(F, q, qOff + i + 16), a1);
                    a2 = FloatVector.fromArray(F, k, off + i + 32).fma(FloatVector.fromArray(F, q, qOff + i + 32), a2);
                    a3 = FloatVector.fromArray(F, k, off + i + 48).fma(FloatVector.fromArray(F, q, qOff + i + 48), a3);
                }
                sum = reduce16(a0.add(a2).add(a1.add(a3)));
            }
            for (int i = n; i < headDim; i++) {
                sum = CpuMath.addTail(sum, k[off + i], q[qOff + i], i < plain);
            }
            att[base + t] = sum * scale;
        }
    }

    /** {@link #scoresF32} for heads of 128: the query's eight vectors loaded once, each key's eight once. */
    private static void scores128(float[] k, int from, int to, float[] q, int qOff, float scale, float[] att, int base) {
        FloatVector q0 = FloatVector.fromArray(F, q, qOff);
        FloatVector q1 = FloatVector.fromArray(F, q, qOff + 16);
        FloatVector q2 = FloatVector.fromArray(F, q, qOff + 32);
        FloatVector q3 = FloatVector.fromArray(F, q, qOff + 48);
        FloatVector q4 = FloatVector.fromArray(F, q, qOff + 64);
        FloatVector q5 = FloatVector.fromArray(F, q, qOff + 80);
        FloatVector q6 = FloatVector.fromArray(F, q, qOff + 96);
        FloatVector q7 = FloatVector.fromArray(F, q, qOff + 112);
        for (int t = from; t < to; t++) {
            int off = t * 128;
            FloatVector z = FloatVector.zero(F);
            FloatVector a0 = FloatVector.fromArray(F, k, off).fma(q0, z);
            FloatVector a1 = FloatVector.fromArray(F, k, off + 16).fma(q1, z);
            FloatVector a2 = FloatVector.fromArray(F, k, off + 32).fma(q2, z);
            FloatVector a3 = FloatVector.fromArray(F, k, off + 48).fma(q3, z);
            a0 = FloatVector.fromArray(F, k, off + 64).fma(q4, a0);
            a1 = FloatVector.fromArray(F, k, off + 80).fma(q5, a1);
            a2 = FloatVector.fromArray(F, k, off + 96).fma(q6, a2);
            a3 = FloatVector.fromArray(F, k, off + 112).fma(q7, a3);
            att[base + t] = reduce16(a0.add(a2).add(a1.add(a3))) * scale;
        }
    }

    /**
     * {@link Kernels#scoresInt8} for 16 consecutive positions at a time, one per lane: each lane
     * adds its channels' products in order, as the scalar loop does; the last positions scalar.
     */
    @Override
    public void scoresInt8(byte[] codes, int tokens, int hd, float[] qs, int from, int to, float bias, float scale,
                           float[] att, int base) {
        int t = from;
        for (; t + 16 <= to; t += 16) {
            FloatVector dot = FloatVector.zero(F);
            for (int c = 0; c < hd; c++) {
                FloatVector code = (FloatVector) ((IntVector) ByteVector.fromArray(B128, codes, c * tokens + t)
                        .convertShape(VectorOperators.B2I, I, 0)).and(0xFF).convert(VectorOperators.I2F, 0);
                dot = dot.add(code.mul(qs[c]));
            }
            FloatVector.broadcast(F, bias).add(dot).mul(scale).intoArray(att, base + t);
        }
        if (t < to) {
            super.scoresInt8(codes, tokens, hd, qs, t, to, bias, scale, att, base);
        }
    }

    /**
     * {@link Kernels#accumulateInt8} 16 channels at a time (the same float operations per channel:
     * {@code fma(min + scale * code, a, acc)}); groups that are not a multiple of 16 take the scalar loop.
     */
    @Override
    public void accumulateInt8(byte[] codes, int hd, int group, short[] scales, short[] mins, float[] p, int base,
                               int from, int to, float[] acc, int lanes) {
        if (group % 16 != 0) {
            super.accumulateInt8(codes, hd, group, scales, mins, p, base, from, to, acc, lanes);
            return;
        }
        int gpt = hd / group;
        for (int t = from; t < to; t++) {
            float a = p[base + t];
            if (a == 0) {
                continue;
            }
            int off = t * hd;
            int row = ((base + t) % lanes) * hd;
            FloatVector av = FloatVector.broadcast(F, a);
            for (int g = 0; g < gpt; g++) {
                FloatVector sc = FloatVector.broadcast(F, Float16.toFloat(scales[t * gpt + g]));
                FloatVector m = FloatVector.broadcast(F, Float16.toFloat(mins[t * gpt + g]));
                for (int c = g * group; c < g * group + group; c += 16) {
                    FloatVector code = (FloatVector) ((IntVector) ByteVector.fromArray(B128, codes, off + c)
                            .convertShape(VectorOperators.B2I, I, 0)).and(0xFF).convert(VectorOperators.I2F, 0);
                    m.add(sc.mul(code)).fma(av, FloatVector.fromArray(F, acc, row + c)).intoArray(acc, row + c);
                }
            }
        }
    }

    /**
     * {@link Kernels#accumulateInt8Columns} 16 positions at a time where their accumulator lanes are
     * 16 aligned consecutive ones (the same float operations per element; a position of probability 0
     * keeps its element, as the scalar loop skips it), the scalar steps elsewhere.
     */
    @Override
    public void accumulateInt8Columns(byte[] codes, int tokens, int hd, float[] mins, float[] scales, float[] p, int base,
                                      int from, int to, float[] acc, int lanes) {
        for (int c = 0; c < hd; c++) {
            float m = mins[c];
            float sc = scales[c];
            FloatVector mv = FloatVector.broadcast(F, m);
            FloatVector sv = FloatVector.broadcast(F, sc);
            for (int t = from; t < to; ) {
                int lane = (base + t) % lanes;
                if ((lane & 15) == 0 && t + 16 <= to) {
                    FloatVector pv = FloatVector.fromArray(F, p, base + t);
                    FloatVector code = (FloatVector) ((IntVector) ByteVector.fromArray(B128, codes, c * tokens + t)
                            .convertShape(VectorOperators.B2I, I, 0)).and(0xFF).convert(VectorOperators.I2F, 0);
                    FloatVector old = FloatVector.fromArray(F, acc, c * lanes + lane);
                    old.blend(mv.add(sv.mul(code)).fma(pv, old), pv.compare(VectorOperators.NE, 0f)).intoArray(acc, c * lanes + lane);
                    t += 16;
                } else {
                    float a = p[base + t];
                    if (a != 0) {
                        int i = c * lanes + lane;
                        acc[i] = Math.fma(m + sc * (codes[c * tokens + t] & 0xFF), a, acc[i]);
                    }
                    t++;
                }
            }
        }
    }

    /**
     * {@link Kernels#maskedSoftmax} 16 positions at a time: ggml's vector expf in float lanes (the
     * same operations as {@link CpuMath#vexp}, 2^n put into the exponent field, exact for |n| <= 125),
     * each chunk's sum by {@link #reduce16}. A chunk with masked positions, the end of the row, or an
     * exponent outside [-125, 125] (tiny probabilities) takes the scalar steps.
     */
    @Override
    public void maskedSoftmax(float[] att, int len, int a, int b, float max) {
        int padded = (len + 15) & ~15;
        FloatVector r = FloatVector.broadcast(F, 0x1.8p23f);
        FloatVector mx = FloatVector.broadcast(F, max);
        double sum = 0;
        for (int c = 0; c < padded; c += 16) {
            if (c + 16 <= len && (c + 16 <= a || c >= b)) {
                FloatVector x = FloatVector.fromArray(F, att, c).sub(mx);
                FloatVector z = x.fma(FloatVector.broadcast(F, 0x1.715476p+0f), r);
                FloatVector nn = z.sub(r);
                if (nn.abs().compare(VectorOperators.LE, 125f).allTrue()) { // false for NaN
                    // the expf steps of swiglu below, written out again: a helper returning a
                    // vector is not inlined by C2 and boxes (2-5x slower)
                    FloatVector neg = nn.neg();
                    FloatVector bb = neg.fma(FloatVector.broadcast(F, 0x1.7f7d1cp-20f), neg.fma(FloatVector.broadcast(F, 0x1.62e4p-1f), x));
                    FloatVector sq = bb.mul(bb);
                    FloatVector hi = FloatVector.broadcast(F, 0x1.0e4020p-7f).fma(bb, FloatVector.broadcast(F, 0x1.573e2ep-5f));
                    FloatVector mid = FloatVector.broadcast(F, 0x1.555e66p-3f).fma(bb, FloatVector.broadcast(F, 0x1.fffdb6p-2f));
                    FloatVector lo = FloatVector.broadcast(F, 0x1.ffffecp-1f).fma(bb, FloatVector.broadcast(F, 1.0f));
                    FloatVector j = hi.fma(sq, mid).fma(sq, lo);
                    IntVector scale = z.reinterpretAsInts().lanewise(VectorOperators.LSHL, 23);
                    FloatVector e = j.reinterpretAsInts().add(scale).reinterpretAsFloats();
                    e.intoArray(att, c);
                    sum += reduce16(e);
                    continue;
                }
            }
            for (int t = c; t < c + 16; t++) {
                att[t] = t < len && (t < a || t >= b) ? CpuMath.vexp(att[t] - max) : 0f;
            }
            sum += CpuMath.reduce16(att, c);
        }
        float inv = (float) (1.0 / sum);
        int whole = len & ~15;
        for (int t = 0; t < whole; t += 16) {
            FloatVector.fromArray(F, att, t).mul(inv).intoArray(att, t);
        }
        for (int t = whole; t < len; t++) {
            att[t] *= inv;
        }
    }

    /**
     * {@link CpuMath#swiglu} 16 values at a time: ggml's vector {@code expf} ({@link CpuMath#vexp})
     * in float lanes, the same operations in the same order; a chunk where any exponent falls outside
     * [-125, 125] (results near under- or overflow) is left to the scalar code.
     */
    @Override
    public void swiglu(float[] g, float[] u, int n) {
        int vectorPart = n & ~15;
        FloatVector r = FloatVector.broadcast(F, 0x1.8p23f);
        for (int i = 0; i < vectorPart; i += 16) {
            FloatVector x = FloatVector.fromArray(F, g, i);
            FloatVector arg = FloatVector.zero(F).sub(x);
            FloatVector z = arg.fma(FloatVector.broadcast(F, 0x1.715476p+0f), r);
            FloatVector nn = z.sub(r);
            if (!nn.abs().compare(VectorOperators.LE, 125f).allTrue()) { // also NaN
                for (int k = i; k < i + 16; k++) {
                    float xk = g[k];
                    g[k] = xk / (1f + CpuMath.vexp(0f - xk)) * u[k];
                }
                continue;
            }
            FloatVector neg = nn.neg();
            FloatVector b = neg.fma(FloatVector.broadcast(F, 0x1.7f7d1cp-20f), neg.fma(FloatVector.broadcast(F, 0x1.62e4p-1f), arg));
            FloatVector sq = b.mul(b);
            FloatVector hi = FloatVector.broadcast(F, 0x1.0e4020p-7f).fma(b, FloatVector.broadcast(F, 0x1.573e2ep-5f));
            FloatVector mid = FloatVector.broadcast(F, 0x1.555e66p-3f).fma(b, FloatVector.broadcast(F, 0x1.fffdb6p-2f));
            FloatVector lo = FloatVector.broadcast(F, 0x1.ffffecp-1f).fma(b, FloatVector.broadcast(F, 1.0f));
            FloatVector j = hi.fma(sq, mid).fma(sq, lo);
            // j * 2^n as ggml computes it: n (the low bits of z) added to j's exponent field, exact
            // while the result stays a normal float (|n| <= 125)
            IntVector scale = z.reinterpretAsInts().lanewise(VectorOperators.LSHL, 23);
            FloatVector e = j.reinterpretAsInts().add(scale).reinterpretAsFloats();
            x.div(e.add(1f)).mul(FloatVector.fromArray(F, u, i)).intoArray(g, i);
        }
        for (int i = vectorPart; i < n; i++) {
            g[i] = CpuMath.silu(g[i]) * u[i];
        }
    }

    /**
     * {@link Kernels#valueSumsF32} with each lane's sum in registers: lane L's positions L, L + lanes,
     * ... in order (one fma each, as the 64-lane accumulator rows get them), stored once per lane and
     * then folded in ggml's order, instead of 64 accumulator rows in memory per head; 32 columns and
     * up to four heads at a time, so each position's values are loaded once for the four. Head sizes
     * that are not a multiple of 32 take the scalar code.
     */
    @Override
    public void valueSumsF32(float[][] v, int bt, int headDim, int len, int a, int b, float[][] p, int heads, int lanes,
                             float[] out, int outOff) {
        if (headDim % 32 != 0 || (lanes != 64 && lanes != 16)) {
            super.valueSumsF32(v, bt, headDim, len, a, b, p, heads, lanes, out, outOff);
            return;
        }
        // where each position's values are (null: masked), so the lane loops below do no division
        Rows rows = ROWS.get().ensure(len);
        for (int t = 0, block = 0, off = 0; t < len; t++) {
            rows.array[t] = t >= a && t < b ? null : v[block];
            rows.offset[t] = off;
            off += headDim;
            if (off == bt * headDim) {
                off = 0;
                block++;
            }
        }
        for (int h = 0; h < heads; h += 4) {
            valueSumsGroup(rows, headDim, len, p, h, Math.min(4, heads - h), lanes, out, outOff + h * headDim);
        }
    }

    /** Up to four heads' value sums (heads h .. h + count), 32 columns at a time; head g's at outOff + g * headDim. */
    private static void valueSumsGroup(Rows rows, int headDim, int len, float[][] p, int h, int count, int lanes,
                                       float[] out, int outOff) {
        float[] p0 = p[h];
        float[] p1 = count > 1 ? p[h + 1] : p0;
        float[] p2 = count > 2 ? p[h + 2] : p0;
        float[] p3 = count > 3 ? p[h + 3] : p0;
        int size = lanes * 32;
        float[] mat = rows.lanes(4 * size);
        for (int c = 0; c < headDim; c += 32) {
            for (int lane = 0; lane < lanes; lane++) {
                FloatVector a0 = FloatVector.zero(F);
                FloatVector a1 = FloatVector.zero(F);
                FloatVector b0 = FloatVector.zero(F);
                FloatVector b1 = FloatVector.zero(F);
                FloatVector c0 = FloatVector.zero(F);
                FloatVector c1 = FloatVector.zero(F);
                FloatVector d0 = FloatVector.zero(F);
                FloatVector d1 = FloatVector.zero(F);
                for (int t = lane; t < len; t += lanes) {
                    float[] values = rows.array[t];
                    if (values != null) {
                        int o = rows.offset[t] + c;
                        FloatVector v0 = FloatVector.fromArray(F, values, o);
                        FloatVector v1 = FloatVector.fromArray(F, values, o + 16);
                        FloatVector pa = FloatVector.broadcast(F, p0[t]);
                        a0 = v0.fma(pa, a0);
                        a1 = v1.fma(pa, a1);
                        FloatVector pb = FloatVector.broadcast(F, p1[t]);
                        b0 = v0.fma(pb, b0);
                        b1 = v1.fma(pb, b1);
                        FloatVector pc = FloatVector.broadcast(F, p2[t]);
                        c0 = v0.fma(pc, c0);
                        c1 = v1.fma(pc, c1);
                        FloatVector pd = FloatVector.broadcast(F, p3[t]);
                        d0 = v0.fma(pd, d0);
                        d1 = v1.fma(pd, d1);
                    }
                }
                int row = lane * 32;
                a0.intoArray(mat, row);
                a1.intoArray(mat, row + 16);
                b0.intoArray(mat, size + row);
                b1.intoArray(mat, size + row + 16);
                c0.intoArray(mat, 2 * size + row);
                c1.intoArray(mat, 2 * size + row + 16);
                d0.intoArray(mat, 3 * size + row);
                d1.intoArray(mat, 3 * size + row + 16);
            }
            for (int g = 0; g < count; g++) {
                for (int i = 0; i < 32; i += 16) {
                    foldLanes(mat, g * size, 32, lanes, i, rows.r, out, outOff + g * headDim + c + i);
                }
            }
        }
    }

    /**
     * Columns i..i+15 of the lane rows at {@code mat[base + lane * stride]} folded as
     * {@link CpuMath#reduceLanes} into {@code out[o..]}: r_k = lane k (16 lanes) or ggml's first
     * fold of four lanes (64), then r_k + r_(k+8), + 4, + 2, + 1.
     */
    private static void foldLanes(float[] mat, int base, int stride, int lanes, int i, float[] r, float[] out, int o) {
        for (int k = 0; k < 16; k++) {
            FloatVector rk = FloatVector.fromArray(F, mat, base + k * stride + i);
            if (lanes == 64) {
                rk = rk.add(FloatVector.fromArray(F, mat, base + (32 + k) * stride + i))
                        .add(FloatVector.fromArray(F, mat, base + (16 + k) * stride + i)
                                .add(FloatVector.fromArray(F, mat, base + (48 + k) * stride + i)));
            }
            rk.intoArray(r, 16 * k);
        }
        FloatVector t0 = FloatVector.fromArray(F, r, 0).add(FloatVector.fromArray(F, r, 128))
                .add(FloatVector.fromArray(F, r, 64).add(FloatVector.fromArray(F, r, 192)));
        FloatVector t1 = FloatVector.fromArray(F, r, 16).add(FloatVector.fromArray(F, r, 144))
                .add(FloatVector.fromArray(F, r, 80).add(FloatVector.fromArray(F, r, 208)));
        FloatVector t2 = FloatVector.fromArray(F, r, 32).add(FloatVector.fromArray(F, r, 160))
                .add(FloatVector.fromArray(F, r, 96).add(FloatVector.fromArray(F, r, 224)));
        FloatVector t3 = FloatVector.fromArray(F, r, 48).add(FloatVector.fromArray(F, r, 176))
                .add(FloatVector.fromArray(F, r, 112).add(FloatVector.fromArray(F, r, 240)));
        t0.add(t2).add(t1.add(t3)).intoArray(out, o);
    }

    /** Per-thread scratch of {@link #valueSumsF32}: each position's value array and offset, the lane rows, the fold. */
    private static final class Rows {
        float[][] array = new float[0][];
        int[] offset = new int[0];
        final float[] r = new float[256];
        private float[] lanes = new float[0];

        float[] lanes(int size) {
            if (lanes.length < size) {
                lanes = new float[size];
            }
            return lanes;
        }

        Rows ensure(int len) {
            if (array.length < len) {
                array = new float[Math.max(len, 2 * array.length)][];
                offset = new int[array.length];
            }
            return this;
        }
    }

    private static final ThreadLocal<Rows> ROWS = ThreadLocal.withInitial(Rows::new);



    @Override
    public void accumulateF32(float[] v, int headDim, int from, int to, float[] p, int base, float[] acc, int lanes) {
        if (headDim % 16 != 0) {
            super.accumulateF32(v, headDim, from, to, p, base, acc, lanes);
            return;
        }
        for (int t = from; t < to; t++) {
            FloatVector a = FloatVector.broadcast(F, p[base + t]);
            int off = t * headDim;
            int row = ((base + t) % lanes) * headDim;
            for (int i = 0; i < headDim; i += 16) {
                FloatVector.fromArray(F, v, off + i).fma(a, FloatVector.fromArray(F, acc, row + i)).intoArray(acc, row + i);
            }
        }
    }

    @Override
    public void reduceLanes(float[] acc, int lanes, int hd, float[] out, int outOff) {
        if (hd % 16 != 0 || (lanes != 64 && lanes != 16)) {
            super.reduceLanes(acc, lanes, hd, out, outOff);
            return;
        }
        for (int i = 0; i < hd; i += 16) {
            FloatVector s0 = lane(acc, lanes, hd, i, 0).add(lane(acc, lanes, hd, i, 8));
            FloatVector s1 = lane(acc, lanes, hd, i, 1).add(lane(acc, lanes, hd, i, 9));
            FloatVector s2 = lane(acc, lanes, hd, i, 2).add(lane(acc, lanes, hd, i, 10));
            FloatVector s3 = lane(acc, lanes, hd, i, 3).add(lane(acc, lanes, hd, i, 11));
            FloatVector s4 = lane(acc, lanes, hd, i, 4).add(lane(acc, lanes, hd, i, 12));
            FloatVector s5 = lane(acc, lanes, hd, i, 5).add(lane(acc, lanes, hd, i, 13));
            FloatVector s6 = lane(acc, lanes, hd, i, 6).add(lane(acc, lanes, hd, i, 14));
            FloatVector s7 = lane(acc, lanes, hd, i, 7).add(lane(acc, lanes, hd, i, 15));
            FloatVector t0 = s0.add(s4);
            FloatVector t1 = s1.add(s5);
            FloatVector t2 = s2.add(s6);
            FloatVector t3 = s3.add(s7);
            t0.add(t2).add(t1.add(t3)).intoArray(out, outOff + i);
        }
    }

    /** Lane k (< 16) of the value sums at columns i..i+15: with 64 lanes, ggml's first fold of four. */
    private static FloatVector lane(float[] acc, int lanes, int hd, int i, int k) {
        FloatVector a = FloatVector.fromArray(F, acc, k * hd + i);
        if (lanes == 16) {
            return a;
        }
        return a.add(FloatVector.fromArray(F, acc, (32 + k) * hd + i))
                .add(FloatVector.fromArray(F, acc, (16 + k) * hd + i).add(FloatVector.fromArray(F, acc, (48 + k) * hd + i)));
    }

    /** {@code ggml_vec_dot_f32}: as {@link #dotF16VecDot}, the tail in float as GCC compiles it. */
    private static float dotF32VecDot(byte[] w, int off, int cols, float[] x) {
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = FloatVector.zero(F);
        FloatVector a2 = FloatVector.zero(F);
        FloatVector a3 = FloatVector.zero(F);
        int n = cols & ~63;
        for (int i = 0; i < n; i += 64) {
            a0 = floats16(w, off + 4 * i).fma(FloatVector.fromArray(F, x, i), a0);
            a1 = floats16(w, off + 4 * i + 64).fma(FloatVector.fromArray(F, x, i + 16), a1);
            a2 = floats16(w, off + 4 * i + 128).fma(FloatVector.fromArray(F, x, i + 32), a2);
            a3 = floats16(w, off + 4 * i + 192).fma(FloatVector.fromArray(F, x, i + 48), a3);
        }
        float sum = n > 0 ? reduce16(a0.add(a2).add(a1.add(a3))) : 0f;
        int plain = n + ((cols - n) & ~7);
        for (int i = n; i < cols; i++) {
            sum = CpuMath.addTail(sum, (float) FLOAT_LE.get(w, off + 4 * i), x[i], i < plain);
        }
        return sum;
    }
}
