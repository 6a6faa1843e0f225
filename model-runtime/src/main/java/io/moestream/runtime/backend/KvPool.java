package io.moestream.runtime.backend;

/**
 * Physical KV blocks resident on one backend (device memory for CUDA): the working KV of the active
 * sequences of an engine, as sealed (compressed) and open (float32) blocks ({@link KvLayout}). Which
 * blocks belong to whom is host bookkeeping ({@link BlockAllocator}, {@link BlockTable}); the pool
 * only stores them.
 */
public interface KvPool extends AutoCloseable {

    KvLayout layout();

    /** Sealed blocks held. */
    int blocks();

    /** Open blocks held. */
    int openBlocks();

    @Override
    void close();
}
