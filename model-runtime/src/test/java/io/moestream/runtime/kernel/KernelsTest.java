package io.moestream.runtime.kernel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;
import static org.assertj.core.api.Assumptions.assumeThat;

import io.moestream.runtime.gguf.BlockQuantizer;
import io.moestream.runtime.gguf.Float16;
import io.moestream.runtime.gguf.GgmlType;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Kernels on random rows of odd shapes: vector vs scalar, batched vs single, and the activation rounding rules. */
class KernelsTest {

    static final int[] COLS = {32, 96, 160, 288, 1056};

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "Q4_0", "F16", "BF16", "F32"})
    void vectorKernelsAgreeWithScalarKernels(GgmlType type) {
        Kernels vector = Kernels.vectorOrNull();
        assumeThat(vector).as("Vector API not available").isNotNull();
        SplittableRandom r = new SplittableRandom(11);
        for (int cols : COLS) {
            for (DotOrder order : DotOrder.values()) {
                assertVectorAgreesWithScalar(vector, type, cols, order, r);
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "Q4_0", "F16"})
    void rowGroupsGiveEveryRowTheScalarKernelsBits(GgmlType type) {
        Kernels vector = Kernels.vectorOrNull();
        assumeThat(vector).as("Vector API not available").isNotNull();
        SplittableRandom r = new SplittableRandom(23);
        for (int cols : COLS) {
            int rows = 11; // two groups of four and three rows on their own
            ByteBuffer w = randomRows(type, rows, cols, r);
            Activation x = new Activation().prepare(gaussian(cols, r, 1f), 0, cols, type);
            int rowBytes = (int) type.bytesFor(cols);
            float[] out = new float[rows + 2];
            vector.dotRows(type, w, rowBytes, rowBytes, rows - 1, cols, x, out, 2); // from row 1, written from index 2
            for (int row = 1; row < rows; row++) {
                assertThat(out[row + 1]).as(type + " cols " + cols + " row " + row)
                        .isEqualTo(Kernels.scalar().dot(type, w, row * rowBytes, cols, x));
            }
            assertThat(out[0]).isZero();
            assertThat(out[1]).isZero();
        }
    }

    private static void assertVectorAgreesWithScalar(Kernels vector, GgmlType type, int cols, DotOrder order, SplittableRandom r) {
        Kernels scalar = Kernels.scalar();
        int rows = 7;
        ByteBuffer w = randomRows(type, rows, cols, r);
        Activation[] xs = new Activation[7]; // batched groups (2 for Q8_0, 4 for Q4_0) and remainders
        for (int k = 0; k < xs.length; k++) {
            xs[k] = new Activation().prepare(gaussian(cols, r, k == 0 ? 1e-3f : 1f), 0, cols, type, order);
        }
        int rowBytes = (int) type.bytesFor(cols);
        float[][] batched = new float[xs.length][rows];
        String what = type + " " + order + " cols " + cols;
        for (int row = 0; row < rows; row++) {
            vector.dots(type, w, row * rowBytes, cols, xs, xs.length, batched, row);
            for (int k = 0; k < xs.length; k++) {
                float s = scalar.dot(type, w, row * rowBytes, cols, xs[k]);
                float v = vector.dot(type, w, row * rowBytes, cols, xs[k]);
                if (type != GgmlType.BF16) {
                    // same integer sums (quantized) and the same float operations in the same order
                    assertThat(v).as(what + " row " + row + " x" + k).isEqualTo(s);
                    assertThat(batched[k][row]).as("batched " + what).isEqualTo(s);
                } else {
                    assertThat((double) v).as(what).isCloseTo(s, org.assertj.core.data.Offset.offset(1e-5 * (1 + Math.abs(s)) * Math.sqrt(cols)));
                    assertThat(batched[k][row]).isEqualTo(v);
                }
            }
        }
    }

    @Test
    void floatRowsAreSummedInTheOrderOfLlamaCppsKernelForTheChunk() {
        SplittableRandom r = new SplittableRandom(17);
        int cols = 96;
        int ordersDiffer = 0;
        for (int trial = 0; trial < 20; trial++) {
            ByteBuffer w = randomRows(GgmlType.F32, 1, cols, r);
            float[] row = decode(GgmlType.F32, w, cols);
            float[] x = gaussian(cols, r, 1f);
            // tinyBLAS: lane l accumulates columns l, l + 16, ... with fma, then one 16-lane reduction
            float[] lanes = new float[16];
            for (int i = 0; i < cols; i++) {
                lanes[i % 16] = Math.fma(row[i], x[i], lanes[i % 16]);
            }
            float tiled = CpuMath.reduce16(lanes, 0);
            // vec_dot: 4 x 16 lanes over the first 64 columns, reduced, then the tail in float
            float vecDot = CpuMath.dotF32(row, 0, x, 0, cols);
            for (Kernels k : new Kernels[] {Kernels.scalar(), Kernels.get()}) {
                assertThat(k.dot(GgmlType.F32, w, 0, cols, new Activation().prepare(x, 0, cols, GgmlType.F32, DotOrder.TINYBLAS)))
                        .as(k.name()).isEqualTo(tiled);
                assertThat(k.dot(GgmlType.F32, w, 0, cols, new Activation().prepare(x, 0, cols, GgmlType.F32)))
                        .as(k.name()).isEqualTo(vecDot);
            }
            ordersDiffer += tiled != vecDot ? 1 : 0;
        }
        assertThat(ordersDiffer).as("rows whose two sums differ in the last bits").isPositive();
    }

    @Test
    void attentionScoresOverFloatKeysAreTheScalarDotsBits() {
        SplittableRandom r = new SplittableRandom(19);
        for (Kernels k : new Kernels[] {Kernels.vectorOrNull(), Kernels.get()}) {
            if (k == null) {
                continue;
            }
            for (int headDim : new int[] {40, 64, 80, 128, 200}) {
                int positions = 9;
                float[] keys = gaussian(positions * headDim, r, 1f);
                float[] q = gaussian(headDim + 3, r, 1f);
                float[] att = new float[positions + 2];
                k.scoresF32(keys, headDim, 1, positions, q, 3, 0.125f, att, 2);
                for (int t = 1; t < positions; t++) {
                    assertThat(att[t + 2]).as(k.name() + " headDim " + headDim + " position " + t)
                            .isEqualTo(CpuMath.dotF32(keys, t * headDim, q, 3, headDim) * 0.125f);
                }
                assertThat(att[0]).isZero();
                assertThat(att[1]).isZero();
                assertThat(att[2]).isZero();
            }
        }
    }

    @Test
    void attentionValueSumsAreTheScalarLoopsBits() {
        Kernels vector = Kernels.vectorOrNull();
        assumeThat(vector).as("Vector API not available").isNotNull();
        SplittableRandom r = new SplittableRandom(29);
        for (int lanes : new int[] {16, 64}) {
            for (int headDim : new int[] {48, 128}) {
                int positions = 150;
                float[] v = gaussian(positions * headDim, r, 1f);
                float[] p = gaussian(positions + 5, r, 0.1f);
                float[] accScalar = new float[lanes * headDim];
                float[] accVector = new float[lanes * headDim];
                Kernels.scalar().accumulateF32(v, headDim, 2, positions, p, 5, accScalar, lanes);
                vector.accumulateF32(v, headDim, 2, positions, p, 5, accVector, lanes);
                assertThat(accVector).as("lanes " + lanes + " headDim " + headDim).containsExactly(accScalar);
                float[] outScalar = new float[headDim + 1];
                float[] outVector = new float[headDim + 1];
                Kernels.scalar().reduceLanes(accScalar, lanes, headDim, outScalar, 1);
                vector.reduceLanes(accVector, lanes, headDim, outVector, 1);
                assertThat(outVector).as("lanes " + lanes + " headDim " + headDim).containsExactly(outScalar);
                assertThat(outScalar[0]).isZero();
            }
        }
    }

    @Test
    void blockValueSumsInRegistersAreTheMemoryLanesBits() {
        Kernels vector = Kernels.vectorOrNull();
        assumeThat(vector).as("Vector API not available").isNotNull();
        SplittableRandom r = new SplittableRandom(37);
        int bt = 16;
        int len = 150;
        for (int hd : new int[] {48, 64, 128}) { // a multiple of 16 (16 columns at a time) and of 32 (32 at a time)
            float[][] blocks = new float[(len + bt - 1) / bt][];
            for (int i = 0; i < blocks.length; i++) {
                blocks[i] = gaussian(bt * hd, r, 1f);
            }
            int heads = 5; // a group of four query heads and one more
            float[][] probs = new float[heads][];
            for (int g = 0; g < heads; g++) {
                probs[g] = gaussian(len, r, 0.1f);
            }
            for (int lanes : new int[] {16, 64}) {
                for (int[] ab : new int[][] {{len, len}, {4, 130}, {0, 70}, {33, 34}}) {
                    float[] expected = new float[heads * hd + 1];
                    float[] got = new float[heads * hd + 1];
                    Kernels.scalar().valueSumsF32(blocks, bt, hd, len, ab[0], ab[1], probs, heads, lanes, expected, 1);
                    vector.valueSumsF32(blocks, bt, hd, len, ab[0], ab[1], probs, heads, lanes, got, 1);
                    assertThat(got).as("headDim " + hd + " lanes " + lanes + " masked [" + ab[0] + ", " + ab[1] + ")")
                            .containsExactly(expected);
                    float[] alone = new float[hd];
                    vector.valueSumsF32(blocks, bt, hd, len, ab[0], ab[1], new float[][] {probs[2]}, 1, lanes, alone, 0);
                    assertThat(java.util.Arrays.copyOfRange(got, 1 + 2 * hd, 1 + 3 * hd)).as("one head alone").containsExactly(alone);
                }
            }
        }
        int headDim = 64;
        float[][] v = new float[(len + bt - 1) / bt][];
        for (int i = 0; i < v.length; i++) {
            v[i] = gaussian(bt * headDim, r, 1f);
        }
        float[] p = gaussian(len, r, 0.1f);
        // and the scalar form is the per-block accumulation the other codecs use, then the lane reduction
        float[] acc = new float[64 * headDim];
        for (int bi = 0; bi < v.length; bi++) {
            Kernels.scalar().accumulateF32(v[bi], headDim, 0, Math.min(bt, len - bi * bt), p, bi * bt, acc, 64);
        }
        float[] viaBlocks = new float[headDim];
        CpuMath.reduceLanes(acc, 64, headDim, viaBlocks, 0);
        float[] direct = new float[headDim];
        Kernels.scalar().valueSumsF32(v, bt, headDim, len, len, len, new float[][] {p}, 1, 64, direct, 0);
        assertThat(direct).containsExactly(viaBlocks);
    }

    @Test
    void swigluInVectorLanesIsTheScalarSwiglusBits() {
        Kernels vector = Kernels.vectorOrNull();
        assumeThat(vector).as("Vector API not available").isNotNull();
        SplittableRandom r = new SplittableRandom(31);
        int n = 16 * 40 + 7;
        float[] g = new float[n];
        float[] u = gaussian(n, r, 1f);
        for (int i = 0; i < n; i++) {
            g[i] = (float) r.nextGaussian() * (i < 160 ? 1f : i < 320 ? 30f : 95f); // the last chunks reach exp's limits
        }
        g[400] = Float.NaN;
        g[417] = Float.POSITIVE_INFINITY;
        g[433] = Float.NEGATIVE_INFINITY;
        g[450] = -0f;
        float[] expected = g.clone();
        CpuMath.swiglu(expected, u, n);
        float[] got = g.clone();
        vector.swiglu(got, u, n);
        for (int i = 0; i < n; i++) {
            assertThat(Float.floatToRawIntBits(got[i])).as("value " + i + " of " + g[i]).isEqualTo(Float.floatToRawIntBits(expected[i]));
        }
    }

    @Test
    void int8KeyScoresInVectorLanesAreTheScalarSums() {
        Kernels vector = Kernels.vectorOrNull();
        assumeThat(vector).as("Vector API not available").isNotNull();
        SplittableRandom r = new SplittableRandom(59);
        int tokens = 40, hd = 64;
        byte[] codes = new byte[tokens * hd];
        for (int i = 0; i < codes.length; i++) {
            codes[i] = (byte) r.nextInt(256);
        }
        float[] qs = gaussian(hd, r, 0.01f);
        for (int[] range : new int[][] {{0, 40}, {3, 35}, {16, 32}, {7, 9}}) { // whole vectors and scalar tails
            float[] expected = new float[tokens + 2];
            float[] got = new float[tokens + 2];
            Kernels.scalar().scoresInt8(codes, tokens, hd, qs, range[0], range[1], -0.75f, 0.125f, expected, 2);
            vector.scoresInt8(codes, tokens, hd, qs, range[0], range[1], -0.75f, 0.125f, got, 2);
            assertThat(got).as("positions " + range[0] + ".." + range[1]).containsExactly(expected);
        }
    }

    @Test
    void int8ValueCodesAccumulateInVectorLanesAsTheScalarLoop() {
        Kernels vector = Kernels.vectorOrNull();
        assumeThat(vector).as("Vector API not available").isNotNull();
        SplittableRandom r = new SplittableRandom(53);
        for (int[] shape : new int[][] {{128, 32}, {64, 16}, {96, 32}, {40, 8}}) { // the last: groups of 8 (scalar)
            int hd = shape[0], group = shape[1], tokens = 20;
            byte[] codes = new byte[tokens * hd];
            for (int i = 0; i < codes.length; i++) {
                codes[i] = (byte) r.nextInt(256);
            }
            short[] scales = new short[tokens * hd / group];
            short[] mins = new short[scales.length];
            for (int i = 0; i < scales.length; i++) {
                scales[i] = io.moestream.runtime.gguf.Float16.fromFloat((float) r.nextDouble() * 0.05f);
                mins[i] = io.moestream.runtime.gguf.Float16.fromFloat((float) r.nextGaussian());
            }
            float[] p = new float[tokens + 7];
            for (int t = 0; t < p.length; t++) {
                p[t] = t % 5 == 0 ? 0f : (float) r.nextDouble(); // probability 0: the position is skipped
            }
            for (int lanes : new int[] {16, 64}) {
                float[] expected = gaussian(lanes * hd, r, 1f);
                float[] got = expected.clone();
                Kernels.scalar().accumulateInt8(codes, hd, group, scales, mins, p, 7, 1, tokens, expected, lanes);
                vector.accumulateInt8(codes, hd, group, scales, mins, p, 7, 1, tokens, got, lanes);
                assertThat(got).as("head size " + hd + ", groups of " + group + ", lanes " + lanes).containsExactly(expected);
            }
        }
    }

    @Test
    void int8ColumnCodesAccumulateInVectorLanesAsTheScalarLoop() {
        Kernels vector = Kernels.vectorOrNull();
        assumeThat(vector).as("Vector API not available").isNotNull();
        SplittableRandom r = new SplittableRandom(54);
        for (int hd : new int[] {80, 576, 8}) { // the MLA latent rows, and a narrow one
            int tokens = 32;
            byte[] codes = new byte[tokens * hd];
            for (int i = 0; i < codes.length; i++) {
                codes[i] = (byte) r.nextInt(256);
            }
            float[] mins = gaussian(hd, r, 1f);
            float[] scales = new float[hd];
            for (int c = 0; c < hd; c++) {
                scales[c] = (float) r.nextDouble() * 0.05f;
            }
            float[] p = new float[tokens + 64];
            for (int t = 0; t < p.length; t++) {
                p[t] = t % 5 == 0 ? 0f : (float) r.nextDouble();
            }
            for (int lanes : new int[] {16, 64}) {
                float[] expected = gaussian(lanes * hd, r, 1f);
                float[] got = expected.clone();
                // block-aligned (base 64) and not (base 7: no 16 aligned lanes in a row)
                for (int base : new int[] {64, 7}) {
                    Kernels.scalar().accumulateInt8Columns(codes, tokens, hd, mins, scales, p, base, 1, 31, expected, lanes);
                    vector.accumulateInt8Columns(codes, tokens, hd, mins, scales, p, base, 1, 31, got, lanes);
                    assertThat(got).as("row %d, lanes %d, base %d", hd, lanes, base).containsExactly(expected);
                }
            }
        }
    }

    @Test
    void maskedSoftmaxInVectorLanesIsTheScalarSoftmaxsBits() {
        Kernels vector = Kernels.vectorOrNull();
        assumeThat(vector).as("Vector API not available").isNotNull();
        SplittableRandom r = new SplittableRandom(41);
        // lengths with and without a tail; visible ranges: all, a sink + window cutting chunks, none masked in a chunk
        int[][] cases = {{1, 1, 1}, {16, 16, 16}, {37, 37, 37}, {80, 4, 60}, {96, 16, 48}, {200, 7, 150}, {64, 0, 33}};
        for (int[] c : cases) {
            int len = c[0];
            for (float spread : new float[] {1f, 40f, 400f}) { // 400: exponents past -125 (scalar chunks)
                float[] att = new float[(len + 15) & ~15];
                float max = Float.NEGATIVE_INFINITY;
                for (int t = 0; t < len; t++) {
                    att[t] = (float) r.nextGaussian() * spread;
                    if (t < c[1] || t >= c[2]) {
                        max = Math.max(max, att[t]);
                    }
                }
                float[] expected = att.clone();
                Kernels.scalar().maskedSoftmax(expected, len, c[1], c[2], max);
                float[] got = att.clone();
                vector.maskedSoftmax(got, len, c[1], c[2], max);
                for (int t = 0; t < att.length; t++) {
                    assertThat(Float.floatToRawIntBits(got[t])).as("len " + len + " spread " + spread + " position " + t)
                            .isEqualTo(Float.floatToRawIntBits(expected[t]));
                }
            }
        }
    }

    @Test
    void sinkSoftmaxMatchesADoubleReferenceAndTakesItsShare() {
        SplittableRandom r = new SplittableRandom(43);
        int[][] cases = {{5, 5, 5}, {40, 0, 24}, {300, 0, 284}};
        for (int[] c : cases) {
            int len = c[0];
            for (float sink : new float[] {-3f, 2f, 12f}) {
                float[] att = new float[(len + 15) & ~15];
                float max = Float.NEGATIVE_INFINITY;
                for (int t = 0; t < len; t++) {
                    att[t] = (float) r.nextGaussian() * 3;
                    if (t < c[1] || t >= c[2]) {
                        max = Math.max(max, att[t]);
                    }
                }
                double m = Math.max(max, sink);
                double sum = Math.exp(sink - m);
                for (int t = 0; t < len; t++) {
                    sum += t < c[1] || t >= c[2] ? Math.exp(att[t] - m) : 0;
                }
                float[] want = att.clone();
                Kernels.scalar().maskedSoftmax(att, len, c[1], c[2], max, sink);
                double total = 0;
                for (int t = 0; t < len; t++) {
                    double p = t < c[1] || t >= c[2] ? Math.exp(want[t] - m) / sum : 0;
                    assertThat((double) att[t]).as("len %d sink %s position %d", len, sink, t).isCloseTo(p, within(1e-6));
                    total += att[t];
                }
                assertThat(total + Math.exp(sink - m) / sum).isCloseTo(1.0, within(1e-5));
            }
        }
    }

    @Test
    void fastQ4KernelsAgreeWithScalarKernelsToFloatRounding() {
        Kernels fast = Kernels.vectorOrNull(true);
        assumeThat(fast).as("Vector API not available").isNotNull();
        SplittableRandom r = new SplittableRandom(13);
        for (int cols : COLS) {
            ByteBuffer w = randomRows(GgmlType.Q4_0, 3, cols, r);
            Activation x = new Activation().prepare(gaussian(cols, r, 1f), 0, cols, GgmlType.Q4_0);
            int rowBytes = (int) GgmlType.Q4_0.bytesFor(cols);
            for (int row = 0; row < 3; row++) {
                float s = Kernels.scalar().dot(GgmlType.Q4_0, w, row * rowBytes, cols, x);
                assertThat(fast.dot(GgmlType.Q4_0, w, row * rowBytes, cols, x))
                        .isCloseTo(s, org.assertj.core.data.Offset.offset(1e-5f * (1 + Math.abs(s))));
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "Q4_0", "F16", "BF16", "F32"})
    void kernelsAreCloseToThePlainFloatProduct(GgmlType type) {
        SplittableRandom r = new SplittableRandom(5);
        for (Kernels k : new Kernels[] {Kernels.scalar(), Kernels.get()}) {
            for (int cols : COLS) {
                ByteBuffer w = randomRows(type, 1, cols, r);
                float[] x = gaussian(cols, r, 1f);
                float[] row = decode(type, w, cols);
                double exact = 0;
                double norm = 0;
                for (int i = 0; i < cols; i++) {
                    exact += (double) row[i] * x[i];
                    norm += Math.abs((double) row[i] * x[i]);
                }
                float got = k.dot(type, w, 0, cols, new Activation().prepare(x, 0, cols, type));
                // activation rounding: Q8_0 half a step of amax/127 per value, F16 2^-11, BF16 2^-8 relative
                double rel = switch (type) {
                    case Q8_0, Q4_0 -> 0.02;
                    case F16 -> 1e-3;
                    case BF16 -> 8e-3;
                    default -> 1e-5;
                };
                assertThat(Math.abs(got - exact)).as(k.name() + " " + type + " cols " + cols).isLessThanOrEqualTo(rel * norm + 1e-6);
            }
        }
    }

    @Test
    void activationQuantizationFollowsGgmlX86() {
        float[] x = new float[32];
        x[0] = 127f;   // amax: d = 1, id = 127 / 127 = 1
        x[1] = 2.5f;   // ties round to even (the AVX path uses _MM_ROUND_NEAREST), not away from zero
        x[2] = -3.5f;
        x[3] = 0.49f;
        x[4] = -127f;
        Activation a = new Activation().prepare(x, 0, 32, GgmlType.Q8_0);
        assertThat(a.value(0)).isEqualTo(127f);
        assertThat(a.value(1)).isEqualTo(2f);
        assertThat(a.value(2)).isEqualTo(-4f);
        assertThat(a.value(3)).isEqualTo(0f);
        assertThat(a.value(4)).isEqualTo(-127f);

        float[] z = new float[64];
        Activation zero = new Activation().prepare(z, 0, 64, GgmlType.Q4_0);
        assertThat(zero.value(40)).isEqualTo(0f);

        // d is stored as F16: the product uses the rounded scale
        float[] y = new float[32];
        y[0] = 1f;
        Activation b = new Activation().prepare(y, 0, 32, GgmlType.Q8_0);
        assertThat(b.value(0)).isEqualTo(Float16.toFloat(Float16.fromFloat(1f / 127)) * 127);

        Activation h = new Activation().prepare(new float[] {1.0001f, 3.14159f}, 0, 2, GgmlType.F16);
        assertThat(h.value(0)).isEqualTo(1f);
        assertThat(h.value(1)).isEqualTo(Float16.toFloat(Float16.fromFloat(3.14159f)));
    }

    static float[] gaussian(int n, SplittableRandom r, float scale) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) r.nextGaussian() * scale;
        }
        return x;
    }

    static ByteBuffer randomRows(GgmlType type, int rows, int cols, SplittableRandom r) {
        ByteBuffer w = ByteBuffer.allocateDirect((int) type.bytesFor((long) rows * cols)).order(ByteOrder.LITTLE_ENDIAN);
        for (int row = 0; row < rows; row++) {
            BlockQuantizer.encode(type, gaussian(cols, r, 0.05f), w);
        }
        if (type == GgmlType.Q8_0) {
            w.put(2, (byte) -128); // extreme quant (ggml never writes it, other quantizers may)
        }
        return w.flip();
    }

    static float[] decode(GgmlType type, ByteBuffer w, int cols) {
        float[] out = new float[cols];
        for (int i = 0; i < cols; i++) {
            out[i] = switch (type) {
                case F32 -> w.getFloat(4 * i);
                case F16 -> Float16.toFloat(w.getShort(2 * i));
                case BF16 -> Float16.bf16ToFloat(w.getShort(2 * i));
                case Q8_0 -> Float16.toFloat(w.getShort(i / 32 * 34)) * w.get(i / 32 * 34 + 2 + i % 32);
                case Q4_0 -> {
                    int o = i / 32 * 18;
                    int j = i % 32;
                    int v = w.get(o + 2 + j % 16) & 0xFF;
                    yield Float16.toFloat(w.getShort(o)) * ((j < 16 ? v & 0xF : v >>> 4) - 8);
                }
                default -> throw new IllegalArgumentException();
            };
        }
        return out;
    }
}
