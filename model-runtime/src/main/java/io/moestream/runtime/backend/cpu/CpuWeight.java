package io.moestream.runtime.backend.cpu;

import io.moestream.runtime.backend.WeightHandle;
import io.moestream.runtime.gguf.GgmlType;
import io.moestream.runtime.gguf.GgufFormatException;
import io.moestream.runtime.gguf.GgufTensor;
import io.moestream.runtime.model.WeightMatrix;

import java.nio.ByteBuffer;

/** A weight read in place from the memory-mapped GGUF tensor (the CPU "upload" copies nothing). */
final class CpuWeight implements WeightHandle {

    final String name;
    final GgmlType type;
    final int rows;
    final int cols;
    final int experts;
    final ByteBuffer bytes;     // little-endian, absolute reads only
    final long rowBytes;
    final long slabBytes;       // bytes of one expert matrix
    final WeightMatrix[] mats;  // one per expert

    CpuWeight(GgufTensor t) {
        long[] ne = t.ne();
        if (ne.length < 1 || ne.length > 3) {
            throw new IllegalArgumentException("tensor '" + t.name() + "' " + t.shape() + " is not a vector, matrix or expert stack");
        }
        this.name = t.name();
        this.type = t.type();
        this.cols = (int) ne[0];
        this.rows = ne.length >= 2 ? (int) ne[1] : 1;
        this.experts = ne.length == 3 ? (int) ne[2] : 1;
        this.bytes = t.bytes();
        this.rowBytes = type.bytesFor(cols);
        this.slabBytes = rowBytes * rows;
        try {
            this.mats = ne.length == 3 ? WeightMatrix.experts(t) : new WeightMatrix[] {WeightMatrix.of(t)};
        } catch (GgufFormatException e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        }
    }

    /** Byte offset of row {@code row} of expert {@code expert}. */
    int rowOffset(int expert, int row) {
        return Math.toIntExact(expert * slabBytes + row * rowBytes);
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public GgmlType type() {
        return type;
    }

    @Override
    public int rows() {
        return rows;
    }

    @Override
    public int cols() {
        return cols;
    }

    @Override
    public int experts() {
        return experts;
    }
}
