package io.moestream.cuda;

import io.moestream.runtime.backend.KvLayout;
import io.moestream.runtime.backend.KvPool;

import jcuda.driver.CUdeviceptr;
import jcuda.driver.JCudaDriver;

/** Physical KV blocks in one device allocation, {@link KvLayout} format. */
final class CudaKvPool implements KvPool {

    final KvLayout layout;
    final int blocks;
    final CUdeviceptr ptr;
    private boolean closed;

    CudaKvPool(KvLayout layout, int blocks, CUdeviceptr ptr) {
        this.layout = layout;
        this.blocks = blocks;
        this.ptr = ptr;
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
    public void close() {
        if (!closed) {
            closed = true;
            JCudaDriver.cuMemFree(ptr);
        }
    }
}
