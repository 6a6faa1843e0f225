package io.moestream.runtime.gguf;

/**
 * A ggml tensor element type with its block layout. Only the layout is needed to validate and map
 * a file; {@link #computable()} says whether the runtime can multiply with it.
 */
public enum GgmlType {
    F32(0, 1, 4, true),
    F16(1, 1, 2, true),
    Q4_0(2, 32, 18, true),
    Q4_1(3, 32, 20, false),
    Q5_0(6, 32, 22, true),
    Q5_1(7, 32, 24, false),
    Q8_0(8, 32, 34, true),
    Q8_1(9, 32, 36, false),
    Q2_K(10, 256, 84, true),
    Q3_K(11, 256, 110, true),
    Q4_K(12, 256, 144, true),
    Q5_K(13, 256, 176, true),
    Q6_K(14, 256, 210, true),
    Q8_K(15, 256, 292, false),
    IQ4_NL(20, 32, 18, true),
    I8(24, 1, 1, false),
    I16(25, 1, 2, false),
    I32(26, 1, 4, false),
    I64(27, 1, 8, false),
    F64(28, 1, 8, false),
    BF16(30, 1, 2, true),
    MXFP4(39, 32, 17, true);

    private final int id;
    private final int blockSize;
    private final int blockBytes;
    private final boolean computable;

    GgmlType(int id, int blockSize, int blockBytes, boolean computable) {
        this.id = id;
        this.blockSize = blockSize;
        this.blockBytes = blockBytes;
        this.computable = computable;
    }

    /** The {@code ggml_type} number stored in GGUF. */
    public int id() {
        return id;
    }

    /** Elements per block (1 for plain float types). */
    public int blockSize() {
        return blockSize;
    }

    /** Bytes per block. */
    public int blockBytes() {
        return blockBytes;
    }

    /** Whether {@code WeightMatrix} can read this type in place. */
    public boolean computable() {
        return computable;
    }

    /** Bytes of {@code elements} values; {@code elements} must be a multiple of the block size. */
    public long bytesFor(long elements) {
        return Math.multiplyExact(elements / blockSize, (long) blockBytes);
    }

    /** The type with this id, or {@code null} when unknown to this reader. */
    public static GgmlType byId(int id) {
        for (GgmlType t : values()) {
            if (t.id == id) {
                return t;
            }
        }
        return null;
    }
}
