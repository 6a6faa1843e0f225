package io.moestream.runtime.model;

import io.moestream.runtime.tokenizer.Tokenizer;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A GGUF model loaded for inference: memory-mapped weights, configuration and tokenizer. Thread-safe
 * for concurrent reads; one instance may be shared by several {@link Engine}s.
 */
public final class Model implements AutoCloseable {
    // STUB: implemented by the runtime work; the signatures below are the contract.

    /** Maps the file and checks it; a corrupt or unsupported file fails with a message naming what is wrong. */
    public static Model load(Path ggufFile) throws IOException {
        throw new IllegalStateException("Model not implemented yet");
    }

    /** {@code general.name}, else the file name. */
    public String name() {
        throw new IllegalStateException("Model not implemented yet");
    }

    public Tokenizer tokenizer() {
        throw new IllegalStateException("Model not implemented yet");
    }

    /** Most positions a sequence may hold ({@code context_length}). */
    public int contextLength() {
        throw new IllegalStateException("Model not implemented yet");
    }

    /** A new, empty cache for one sequence. */
    public KvCache newCache() {
        throw new IllegalStateException("Model not implemented yet");
    }

    /** Reads a cache written by {@link KvCache#toBytes()}; fails clearly if it belongs to another model shape. */
    public KvCache cacheFromBytes(byte[] bytes) {
        throw new IllegalStateException("Model not implemented yet");
    }

    @Override
    public void close() {}
}
