package io.moestream.runtime.model;

/**
 * The keys and values of one sequence, every layer, for positions {@code 0..length()-1}, plus the
 * token ids they came from. Uncompressed float for now; serialized to bytes so it can live in Flink
 * keyed state.
 */
public final class KvCache {
    // STUB: implemented by the runtime work; the signatures below are the contract.

    /** Number of positions held. */
    public int length() {
        throw new IllegalStateException("KvCache not implemented yet");
    }

    /** The token ids of positions {@code 0..length()-1}. */
    public int[] tokens() {
        throw new IllegalStateException("KvCache not implemented yet");
    }

    /** An independent deep copy (a DOCUMENT prompt runs on a copy, leaving the document's cache unchanged). */
    public KvCache copy() {
        throw new IllegalStateException("KvCache not implemented yet");
    }

    /** Bytes this cache takes in serialized form. */
    public long sizeBytes() {
        throw new IllegalStateException("KvCache not implemented yet");
    }

    /** Serialized form, versioned; {@link Model#cacheFromBytes(byte[])} reads it back. */
    public byte[] toBytes() {
        throw new IllegalStateException("KvCache not implemented yet");
    }
}
