package io.moestream.runtime.gguf;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * One tensor of a GGUF file: its name, type, shape ({@code ne[0]} innermost, as GGUF stores it) and
 * its bytes, memory-mapped read-only (never copied to the heap).
 *
 * @param name  tensor name, e.g. {@code blk.0.attn_q.weight}
 * @param type  element type
 * @param ne    dimensions, innermost first
 * @param data  little-endian view of exactly this tensor's bytes, position 0
 */
public record GgufTensor(String name, GgmlType type, long[] ne, ByteBuffer data) {

    public GgufTensor {
        ne = ne.clone();
    }

    /** Total element count. */
    public long elementCount() {
        long n = 1;
        for (long d : ne) {
            n *= d;
        }
        return n;
    }

    /** A fresh little-endian duplicate of the data (buffers are not thread-safe in position, ours use absolute reads). */
    public ByteBuffer bytes() {
        return data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    }

    /** Shape as {@code [a, b, c]}. */
    public String shape() {
        return Arrays.toString(ne);
    }

    @Override
    public long[] ne() {
        return ne.clone();
    }

    @Override
    public String toString() {
        return name + " " + type + " " + shape();
    }
}
