package io.moestream.cuda;

import io.moestream.runtime.gguf.GgmlType;
import io.moestream.runtime.gguf.GgufTensor;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Device layouts of weights (what {@code matmul.cu} reads). Plain types keep GGUF's rows. Block
 * types are split into aligned arrays so a lane loads 16 bytes at once:
 * <ul>
 *   <li>Q8_0: int8 quants {@code [matrices * rows][cols]}, then F16 scales {@code [matrices * rows][cols/32]};</li>
 *   <li>Q4_0: nibbles {@code [matrices * rows][cols/32][16]} (low nibble = value j, high = j + 16, as in
 *       GGUF), then F16 scales.</li>
 * </ul>
 * The scales start at {@link Packed#scalesOffset()}, a multiple of 256. The other block types
 * (Q2_K..Q6_K, Q5_0, IQ4_NL, MXFP4: blocks of 84..210 or 17..22 bytes, most not 4-byte aligned)
 * keep their GGUF bytes; {@code blocks.cuh} reads them byte by byte ({@link BlockDecoding} is its twin).
 */
public final class WeightPacking {

    private WeightPacking() {}

    /**
     * A packed tensor.
     *
     * @param type         element type
     * @param data         little-endian device image, position 0
     * @param scalesOffset byte offset of the scales (0 for plain types)
     */
    public record Packed(GgmlType type, ByteBuffer data, long scalesOffset) {}

    /** Bytes of quants (or plain elements) for {@code elements} values. */
    static long quantBytes(GgmlType type, long elements) {
        return switch (type) {
            case Q8_0 -> elements;
            case Q4_0 -> elements / 2;
            default -> type.bytesFor(elements);
        };
    }

    static long align256(long n) {
        return (n + 255) & ~255L;
    }

    /** The device image of {@code t} (any rank; rows are {@code ne[0]} wide). */
    public static Packed pack(GgufTensor t) {
        GgmlType type = t.type();
        ByteBuffer src = t.bytes();
        long elements = t.elementCount();
        if (type == GgmlType.F32 || type == GgmlType.F16 || type == GgmlType.BF16 || BlockDecoding.handles(type)) {
            return new Packed(type, src.slice().order(ByteOrder.LITTLE_ENDIAN), 0);
        }
        if (type != GgmlType.Q8_0 && type != GgmlType.Q4_0) {
            throw new IllegalArgumentException("tensor '" + t.name() + "' has type " + type
                    + ", which the CUDA backend cannot compute with (F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, "
                    + "IQ4_NL, MXFP4)");
        }
        long blocks = elements / 32;
        long quants = quantBytes(type, elements);
        long scalesOffset = align256(quants);
        long total = scalesOffset + 2 * blocks;
        if (total > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("tensor '" + t.name() + "' packs to " + total + " bytes; split it (limit 2 GiB per tensor)");
        }
        ByteBuffer out = ByteBuffer.allocateDirect((int) total).order(ByteOrder.LITTLE_ENDIAN);
        int blockBytes = type.blockBytes();
        int payload = blockBytes - 2;
        byte[] q = new byte[payload];
        for (long b = 0; b < blocks; b++) {
            int off = Math.toIntExact(b * blockBytes);
            out.putShort((int) (scalesOffset + 2 * b), src.getShort(off));
            src.get(off + 2, q);
            out.put((int) (b * payload), q);
        }
        return new Packed(type, out, scalesOffset);
    }

    /** Element {@code i} of a packed tensor as float, read back the way the kernels read it (for tests). */
    public static float valueAt(Packed p, long i) {
        ByteBuffer d = p.data();
        return switch (p.type()) {
            case F32 -> d.getFloat(Math.toIntExact(4 * i));
            case F16 -> io.moestream.runtime.gguf.Float16.toFloat(d.getShort(Math.toIntExact(2 * i)));
            case BF16 -> io.moestream.runtime.gguf.Float16.bf16ToFloat(d.getShort(Math.toIntExact(2 * i)));
            case Q8_0 -> scale(p, i / 32) * d.get(Math.toIntExact(i));
            case Q4_0 -> {
                long blk = i / 32;
                int j = (int) (i % 32);
                int b = d.get(Math.toIntExact(blk * 16 + (j & 15))) & 0xFF;
                int q = (j < 16 ? b & 0xF : b >>> 4) - 8;
                yield scale(p, blk) * q;
            }
            default -> {
                if (!BlockDecoding.handles(p.type())) {
                    throw new IllegalStateException(p.type().toString());
                }
                int qk = p.type().blockSize();
                yield BlockDecoding.value(p.type(), d, Math.toIntExact(i / qk * p.type().blockBytes()), (int) (i % qk));
            }
        };
    }

    private static float scale(Packed p, long block) {
        return io.moestream.runtime.gguf.Float16.toFloat(p.data().getShort(Math.toIntExact(p.scalesOffset() + 2 * block)));
    }
}
