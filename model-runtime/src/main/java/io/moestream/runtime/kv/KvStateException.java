package io.moestream.runtime.kv;

/** Serialized KV metadata or block bytes that cannot be read: corrupted, truncated, wrong version or wrong model. */
public class KvStateException extends RuntimeException {

    public KvStateException(String message) {
        super(message);
    }

    public KvStateException(String message, Throwable cause) {
        super(message, cause);
    }
}
