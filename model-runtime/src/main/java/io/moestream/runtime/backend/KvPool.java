package io.moestream.runtime.backend;

/**
 * Physical KV blocks resident on one backend (device memory for CUDA): the working KV of the active
 * sequences of an engine. Which blocks belong to whom is host bookkeeping ({@link BlockAllocator},
 * {@link BlockTable}); the pool only stores them.
 */
public interface KvPool extends AutoCloseable {

    KvLayout layout();

    /** Physical blocks held. */
    int blocks();

    @Override
    void close();
}
