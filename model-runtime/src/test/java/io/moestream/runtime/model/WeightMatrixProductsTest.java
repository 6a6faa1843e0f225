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

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Several products as one pool job give each product the bits it has alone, and take one job; a
 * matrix whose rows the native kernels copy for batch 1 gives every row the Java kernel's bits.
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
