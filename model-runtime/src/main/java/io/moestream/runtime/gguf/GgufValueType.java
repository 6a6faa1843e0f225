package io.moestream.runtime.gguf;

/** The type tag of a GGUF metadata value. */
public enum GgufValueType {
    UINT8(0, 1),
    INT8(1, 1),
    UINT16(2, 2),
    INT16(3, 2),
    UINT32(4, 4),
    INT32(5, 4),
    FLOAT32(6, 4),
    BOOL(7, 1),
    STRING(8, 8),
    ARRAY(9, 12),
    UINT64(10, 8),
    INT64(11, 8),
    FLOAT64(12, 8);

    private final int id;
    private final int minBytes;

    GgufValueType(int id, int minBytes) {
        this.id = id;
        this.minBytes = minBytes;
    }

    public int id() {
        return id;
    }

    /** Fewest bytes one value of this type takes in a file (used to cap array counts). */
    int minBytes() {
        return minBytes;
    }

    boolean isInteger() {
        return this == UINT8 || this == INT8 || this == UINT16 || this == INT16 || this == UINT32
                || this == INT32 || this == UINT64 || this == INT64;
    }

    /** The type with this id, or {@code null}. */
    public static GgufValueType byId(int id) {
        return id >= 0 && id < values().length ? values()[id] : null;
    }
}
