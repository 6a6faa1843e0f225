package io.moestream.runtime.backend.cpu;

import io.moestream.runtime.backend.KvLayout;
import io.moestream.runtime.backend.KvPool;

/** KV blocks as one float array; F16 blocks hold values already rounded to F16 (so reads equal a real F16 store). */
final class CpuKvPool implements KvPool {

    final KvLayout layout;
    final int blocks;
    final float[] data;

    CpuKvPool(KvLayout layout, int blocks) {
        this.layout = layout;
        this.blocks = blocks;
        this.data = new float[Math.toIntExact(layout.blockElements() * blocks)];
    }

    @Override
    public KvLayout layout() {
        return layout;
    }

    @Override
    public int blocks() {
        return blocks;
    }

    @Override
    public void close() {}
}
