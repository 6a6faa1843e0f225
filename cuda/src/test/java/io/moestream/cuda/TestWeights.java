package io.moestream.cuda;

import io.moestream.runtime.gguf.BlockQuantizer;
import io.moestream.runtime.gguf.Float16;
import io.moestream.runtime.gguf.GgmlType;
import io.moestream.runtime.gguf.GgufTensor;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;

/** Random weight tensors of any type for the GPU op tests (mirrors the runtime's CpuOpsTest inputs). */
public final class TestWeights {

    private TestWeights() {}

    public static GgufTensor tensor(String name, GgmlType type, int experts, int rows, int cols, long seed) {
        if (BlockDecoding.handles(type)) {
            return blocks(name, type, experts, rows, cols, seed, true);
        }
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

    /**
     * A tensor of a block type (Q2_K..Q6_K, Q5_0, IQ4_NL, MXFP4) with random quant and scale bytes and
     * sane float scales (F16 d/dmin of about 0.01 / cols^0.5, MXFP4 exponents near 2^-7), so products
     * stay in range. Java has no quantizer for these types; random bytes reach every code and scale.
     */
    public static GgufTensor blocks(String name, GgmlType type, int experts, int rows, int cols, long seed, boolean direct) {
        Random r = new Random(seed);
        int count = Math.toIntExact(type.bytesFor((long) experts * rows * cols));
        byte[] bytes = new byte[count];
        r.nextBytes(bytes);
        ByteBuffer b = (direct ? ByteBuffer.allocateDirect(count) : ByteBuffer.allocate(count)).order(ByteOrder.LITTLE_ENDIAN);
        b.put(bytes).flip();
        float unit = (float) (1.0 / Math.sqrt(cols));
        for (int o = 0; o < count; o += type.blockBytes()) {
            switch (type) {
                case Q4_K, Q5_K -> {
                    b.putShort(o, Float16.fromFloat(unit * 0.01f * (0.5f + r.nextFloat())));
                    b.putShort(o + 2, Float16.fromFloat(unit * 0.01f * r.nextFloat()));
                }
                case Q6_K -> b.putShort(o + 208, Float16.fromFloat(unit * 0.005f * (0.5f + r.nextFloat())));
                case Q3_K -> b.putShort(o + 108, Float16.fromFloat(unit * 0.01f * (0.5f + r.nextFloat())));
                case Q2_K -> {
                    b.putShort(o + 80, Float16.fromFloat(unit * 0.05f * (0.5f + r.nextFloat())));
                    b.putShort(o + 82, Float16.fromFloat(unit * 0.05f * r.nextFloat()));
                }
                case Q5_0 -> b.putShort(o, Float16.fromFloat(unit * 0.1f * (0.5f + r.nextFloat())));
                case IQ4_NL -> b.putShort(o, Float16.fromFloat(unit * 0.01f * (0.5f + r.nextFloat())));
                case MXFP4 -> b.put(o, (byte) (118 + r.nextInt(6)));
                default -> throw new IllegalArgumentException(type.toString());
            }
        }
        long[] ne = experts > 1 ? new long[] {cols, rows, experts} : new long[] {cols, rows};
        return new GgufTensor(name, type, ne, b);
    }
}
