package io.moestream.runtime.backend;

/**
 * How KV elements are stored in a paged block. F32 and F16 are plain element arrays; the KIVI-style
 * integer codecs (keys grouped per channel, values per token) are declared so block tables and state
 * can name them, and are supported by a backend only once it says so ({@link Backend#supports(KvCodec)}).
 */
public enum KvCodec {
    F32(4),
    F16(2),
    /** int8 KIVI (not implemented by any backend yet). */
    Q8_KIVI(1),
    /** int4 KIVI (not implemented by any backend yet). */
    Q4_KIVI(0);

    private final int elementBytes;

    KvCodec(int elementBytes) {
        this.elementBytes = elementBytes;
    }

    /** Bytes per stored element for the plain codecs; 0 for codecs whose size is not per element. */
    public int elementBytes() {
        return elementBytes;
    }

    /** Whether elements are stored one by one (no groups, no scales). */
    public boolean plain() {
        return this == F32 || this == F16;
    }
}
