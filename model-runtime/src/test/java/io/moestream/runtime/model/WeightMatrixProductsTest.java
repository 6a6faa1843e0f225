package io.moestream.runtime.model;

import static org.assertj.core.api.Assertions.assertThat;

import io.moestream.runtime.gguf.BlockQuantizer;
import io.moestream.runtime.gguf.Float16;
import io.moestream.runtime.gguf.GgmlType;
import io.moestream.runtime.gguf.GgufFormatException;
import io.moestream.runtime.gguf.GgufTensor;
import io.moestream.runtime.kernel.Activation;
import io.moestream.runtime.kernel.DotOrder;
import io.moestream.runtime.kernel.KQuantKernels;
import io.moestream.runtime.kernel.Kernels;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Several products as one pool job give each product the bits it has alone, and take one job; a
 * matrix whose rows the native kernels copy for batch 1 gives every row the Java kernel's bits; a
 * row's bits do not depend on how its chunk is cut.
 */
class WeightMatrixProductsTest {

    @Test
    void groupedProductsEqualSeparateMatmulsAndRunAsOneJob() throws GgufFormatException {
        SplittableRandom r = new SplittableRandom(5);
        int cols = 1024;
        WeightMatrix q = matrix("q", GgmlType.Q8_0, 1024, cols, r); // 1 M weights: pooled
        WeightMatrix k = matrix("k", GgmlType.Q8_0, 256, cols, r);
        WeightMatrix v = matrix("v", GgmlType.Q4_0, 256, cols, r); // another type: its own activation
        WeightMatrix f = matrix("f", GgmlType.F16, 96, cols, r);
        float[][] xs = new float[3][cols];
        for (float[] x : xs) {
            for (int i = 0; i < cols; i++) {
                x[i] = (float) r.nextGaussian();
            }
        }
        DotOrder[] orders = {DotOrder.VEC_DOT, DotOrder.TINYBLAS, DotOrder.VEC_DOT};
        float[][] qOut = new float[3][1024];
        float[][] kOut = new float[3][256];
        float[][] vOut = new float[3][256];
        float[][] fOut = new float[2][96];
        WeightMatrix.Products p = WeightMatrix.Products.local();
        int jobs = p.pooledJobs();
        p.add(q, xs, qOut, 3, orders).add(k, xs, kOut, 3, orders).add(v, xs, vOut, 3, orders)
                .add(f, new float[][] {xs[2], xs[0]}, fOut, 2, null).run();
        assertThat(p.pooledJobs()).isEqualTo(jobs + 1);

        assertSame(q, xs, orders, qOut);
        assertSame(k, xs, orders, kOut);
        assertSame(v, xs, orders, vOut);
        assertSame(f, new float[][] {xs[2], xs[0]}, new DotOrder[] {DotOrder.VEC_DOT, DotOrder.VEC_DOT}, fOut);
    }

    /**
     * Q4_K and Q5_K single-activation products over several pool tasks whose natural size is not a
     * multiple of the copy's 16-row groups, with rows after the last group: every row bit for bit
     * the Java row kernel, the first call (which makes the copy, where the native kernels run) and
     * the next.
     */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q4_K", "Q5_K"})
    void batchOneKQuantProductsEqualTheJavaRows(GgmlType type) throws GgufFormatException {
        SplittableRandom r = new SplittableRandom(11 + type.ordinal());
        int cols = 768;
        int rows = 2 * 1365 + 21;
        int rowBytes = (int) type.bytesFor(cols);
        ByteBuffer b = ByteBuffer.allocateDirect(rows * rowBytes).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < b.capacity(); i++) {
            b.put(i, (byte) r.nextInt(256));
        }
        for (int block = 0; block < b.capacity() / type.blockBytes(); block++) {
            b.putShort(block * type.blockBytes(), Float16.fromFloat((float) (0.001 + 0.01 * r.nextDouble())));
            b.putShort(block * type.blockBytes() + 2, Float16.fromFloat((float) (0.001 + 0.01 * r.nextDouble())));
        }
        WeightMatrix w = WeightMatrix.of(new GgufTensor("w", type, new long[] {cols, rows}, b));
        float[] x = new float[cols];
        for (int i = 0; i < cols; i++) {
            x[i] = (float) r.nextGaussian();
        }
        Activation a = new Activation().prepare(x, 0, cols, type);
        for (int call = 0; call < 2; call++) {
            float[] out = new float[rows];
            w.matmul(x, out);
            for (int row = 0; row < rows; row++) {
                float java = KQuantKernels.dot(type, b, row * rowBytes, cols, a);
                assertThat(Float.floatToRawIntBits(out[row])).as("%s call %d row %d: %s vs %s", type, call, row, out[row], java)
                        .isEqualTo(Float.floatToRawIntBits(java));
            }
        }
    }

    /**
     * A job's last chunks run in pieces: rows [2c, 4c) repeat rows [0, c) (c rows a chunk), so
     * each of the last two chunks must give the bits its twin gives as a whole chunk, for one
     * activation (the repacked Q4_0 rows among them) and for several.
     */
    @Test
    void aChunkCutInPiecesGivesTheBitsOfAWholeOne() throws GgufFormatException {
        SplittableRandom r = new SplittableRandom(11);
        int cols = 1024;
        for (GgmlType type : new GgmlType[] {GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.F16}) {
            for (int n : new int[] {1, 3}) {
                int acts = Math.min(n, Kernels.get().taskActivations());
                int chunk = (int) (Kernels.get().taskWork(acts) / ((long) cols * acts));
                WeightMatrix w = twinMatrix(type, 2 * chunk, cols, r);
                float[][] xs = new float[n][cols];
                for (float[] x : xs) {
                    for (int i = 0; i < cols; i++) {
                        x[i] = (float) r.nextGaussian();
                    }
                }
                float[][] out = new float[n][w.rows()];
                WeightMatrix.Products.local().add(w, xs, out, n, null).run();
                for (int i = 0; i < n; i++) {
                    float[] whole = Arrays.copyOfRange(out[i], 0, 2 * chunk);
                    float[] pieces = Arrays.copyOfRange(out[i], 2 * chunk, 4 * chunk);
                    assertThat(pieces).as("%s, %d activations, activation %d", type, n, i).containsExactly(whole);
                }
            }
        }
    }

    /** A {@code 2 * half} row matrix whose second half repeats its first. */
    private static WeightMatrix twinMatrix(GgmlType type, int half, int cols, SplittableRandom r) throws GgufFormatException {
        float[][] rows = new float[half][cols];
        for (float[] x : rows) {
            for (int i = 0; i < cols; i++) {
                x[i] = (float) r.nextGaussian() * 0.05f;
            }
        }
        ByteBuffer b = ByteBuffer.allocateDirect((int) type.bytesFor(2L * half * cols)).order(ByteOrder.LITTLE_ENDIAN);
        for (int copy = 0; copy < 2; copy++) {
            for (float[] x : rows) {
                BlockQuantizer.encode(type, x, b);
            }
        }
        return WeightMatrix.of(new GgufTensor("twin", type, new long[] {cols, 2L * half}, b.flip()));
    }

    private static void assertSame(WeightMatrix w, float[][] xs, DotOrder[] orders, float[][] grouped) {
        for (int i = 0; i < grouped.length; i++) {
            float[] alone = new float[w.rows()];
            w.matmul(xs[i], alone, orders[i]);
            assertThat(grouped[i]).as(w.name() + " input " + i).containsExactly(alone);
        }
    }

    private static WeightMatrix matrix(String name, GgmlType type, int rows, int cols, SplittableRandom r)
            throws GgufFormatException {
        ByteBuffer b = ByteBuffer.allocateDirect((int) type.bytesFor((long) rows * cols)).order(ByteOrder.LITTLE_ENDIAN);
        for (int row = 0; row < rows; row++) {
            float[] x = new float[cols];
            for (int i = 0; i < cols; i++) {
                x[i] = (float) r.nextGaussian() * 0.05f;
            }
            BlockQuantizer.encode(type, x, b);
        }
        return WeightMatrix.of(new GgufTensor(name, type, new long[] {cols, rows}, b.flip()));
    }
}
