package io.moestream.cuda;

import io.moestream.runtime.backend.KvLayout;
import io.moestream.runtime.backend.KvPool;

import jcuda.driver.CUdeviceptr;
import jcuda.driver.JCudaDriver;

/** Sealed and open KV blocks in two device allocations, {@link KvLayout} format. */
final class CudaKvPool implements KvPool {

    final KvLayout layout;
    final int blocks;
    final int openBlocks;
    final CUdeviceptr sealed;
    final CUdeviceptr open;
    private boolean closed;

    private final CudaDevice device;

    CudaKvPool(CudaDevice device, KvLayout layout, int blocks, int openBlocks, CUdeviceptr sealed, CUdeviceptr open) {
        this.device = device;
        this.layout = layout;
        this.blocks = blocks;
        this.openBlocks = openBlocks;
        this.sealed = sealed;
        this.open = open;
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
    public int openBlocks() {
        return openBlocks;
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            device.makeCurrent();
            JCudaDriver.cuMemFree(sealed);
            JCudaDriver.cuMemFree(open);
        }
    }
}
