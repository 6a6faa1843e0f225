package io.moestream.cuda;

import static org.assertj.core.api.Assertions.assertThat;

import io.moestream.runtime.gguf.BlockQuantizer;
import io.moestream.runtime.gguf.GgmlType;
import io.moestream.runtime.gguf.GgufTensor;
import io.moestream.runtime.model.WeightMatrix;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** The device image of each weight type holds exactly the values the CPU backend reads. */
class WeightPackingTest {

    static GgufTensor tensor(GgmlType type, int experts, int rows, int cols, long seed) {
        if (BlockDecoding.handles(type)) {
            return TestWeights.blocks("w", type, experts, rows, cols, seed, false);
        }
        Random r = new Random(seed);
        ByteBuffer b = ByteBuffer.allocate((int) type.bytesFor((long) experts * rows * cols)).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < experts * rows; i++) {
            float[] row = new float[cols];
            for (int j = 0; j < cols; j++) {
                row[j] = (float) r.nextGaussian();
            }
            BlockQuantizer.encode(type, row, b);
        }
        b.flip();
        return new GgufTensor("w", type, experts > 1 ? new long[] {cols, rows, experts} : new long[] {cols, rows}, b);
    }

    @ParameterizedTest
    @EnumSource(names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q5_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "MXFP4"})
    void packedValuesEqualTheCpuDequantization(GgmlType type) throws Exception {
        int experts = 3, rows = 5;
        int cols = type.blockSize() == 256 ? 512 : 96; // odd row count, 2 super-blocks or 3 blocks per row
        GgufTensor t = tensor(type, experts, rows, cols, 7);
        WeightPacking.Packed p = WeightPacking.pack(t);
        WeightMatrix[] mats = WeightMatrix.experts(t);
        float[] row = new float[cols];
        for (int e = 0; e < experts; e++) {
            for (int r = 0; r < rows; r++) {
                mats[e].dequantizeRow(r, row, 0);
                for (int c = 0; c < cols; c++) {
                    long i = ((long) e * rows + r) * cols + c;
                    assertThat(WeightPacking.valueAt(p, i)).as("e%d r%d c%d", e, r, c).isEqualTo(row[c]);
                }
            }
        }
        if (type == GgmlType.Q8_0 || type == GgmlType.Q4_0) {
            assertThat(p.scalesOffset() % 256).isZero();
            assertThat(p.scalesOffset()).isGreaterThanOrEqualTo(WeightPacking.quantBytes(type, (long) experts * rows * cols));
            assertThat(p.data().capacity()).isEqualTo(p.scalesOffset() + 2L * experts * rows * cols / 32);
            // each row's quants start on a 16-byte boundary (the kernels load 16 bytes per lane)
            assertThat(WeightPacking.quantBytes(type, cols) % 16).isZero();
        } else {
            // plain and GGUF-layout block types: the device image is the file's bytes
            assertThat(p.scalesOffset()).isZero();
            assertThat(p.data().capacity()).isEqualTo(type.bytesFor((long) experts * rows * cols));
            assertThat(p.data().duplicate().position(0)).isEqualTo(t.bytes().duplicate().position(0));
        }
    }
}
