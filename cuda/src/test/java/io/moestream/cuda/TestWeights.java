package io.moestream.cuda;

import io.moestream.runtime.gguf.BlockQuantizer;
import io.moestream.runtime.gguf.GgmlType;
import io.moestream.runtime.gguf.GgufTensor;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;

/** Random weight tensors of any type for the GPU op tests (mirrors the runtime's CpuOpsTest inputs). */
public final class TestWeights {

    private TestWeights() {}

    public static GgufTensor tensor(String name, GgmlType type, int experts, int rows, int cols, long seed) {
        Random r = new Random(seed);
        ByteBuffer b = ByteBuffer.allocateDirect((int) type.bytesFor((long) experts * rows * cols)).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < experts * rows; i++) {
            float[] row = new float[cols];
            for (int j = 0; j < cols; j++) {
                row[j] = (float) r.nextGaussian() * 0.1f;
            }
            BlockQuantizer.encode(type, row, b);
        }
        b.flip();
        long[] ne = experts > 1 ? new long[] {cols, rows, experts} : new long[] {cols, rows};
        return new GgufTensor(name, type, ne, b);
    }
}
