package io.moestream.runtime.gguf;

import static org.assertj.core.api.Assertions.assertThat;

import io.moestream.runtime.model.WeightMatrix;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.nio.ByteOrder;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BlockQuantizerTest {

    @TempDir Path tmp;

    private static float dot(float[] a, float[] b) {
        float s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }

    @Test
    void halfConversionRoundTripsEveryFiniteHalf() {
        for (int h = 0; h < 1 << 16; h++) {
            float f = Float16.toFloat((short) h);
            if (!Float.isNaN(f)) {
                assertThat(Float16.fromFloat(f) & 0xFFFF).as("half 0x%04x", h).isEqualTo(h);
            }
        }
        assertThat(Float16.toFloat(Float16.fromFloat(1f / 3))).isCloseTo(1f / 3, org.assertj.core.data.Offset.offset(1e-4f));
        assertThat(Float16.fromFloat(70000f)).isEqualTo((short) 0x7C00); // overflow to +inf
    }

    @Test
    void q8AndQ4BlocksDecodeWithinHalfAStep() throws IOException {
        SplittableRandom r = new SplittableRandom(7);
        float[] row = new float[128];
        for (int i = 0; i < row.length; i++) {
            row[i] = (float) r.nextGaussian();
        }
        for (GgmlType type : new GgmlType[] {GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.F16, GgmlType.BF16}) {
            ByteBuffer buf = ByteBuffer.allocate((int) type.bytesFor(row.length)).order(ByteOrder.LITTLE_ENDIAN);
            BlockQuantizer.encode(type, row, buf);
            assertThat(buf.hasRemaining()).isFalse();
            Path file = tmp.resolve(type + ".gguf");
            new GgufWriter().addTensor("t", type, new long[] {row.length}, (i, out) -> System.arraycopy(row, 0, out, 0, row.length))
                    .write(file);
            float[] back = new float[row.length];
            WeightMatrix.of(GgufFile.open(file).tensor("t")).dequantizeRow(0, back, 0);
            assertThat(WeightMatrix.of(GgufFile.open(file).tensor("t")).dot(0, row, 0)).as(type + " dot")
                    .isCloseTo(dot(back, row), org.assertj.core.data.Offset.offset(1e-3f));
            float amax = 0;
            for (float v : row) {
                amax = Math.max(amax, Math.abs(v));
            }
            float step = switch (type) {
                case Q8_0 -> amax / 127;
                case Q4_0 -> amax / 8;
                default -> amax / 256;
            };
            for (int i = 0; i < row.length; i++) {
                assertThat(Math.abs(back[i] - row[i])).as(type + " element " + i).isLessThanOrEqualTo(step * 0.51f + 1e-6f);
            }
        }
    }
}
