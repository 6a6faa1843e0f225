package io.moestream.cuda;

import io.moestream.runtime.backend.Tensor;

import jcuda.driver.CUdeviceptr;
import jcuda.driver.JCudaDriver;

/** A device tensor; views share the allocation and free nothing. */
final class CudaTensor implements Tensor {

    final DType dtype;
    final int rows;
    final int cols;
    final CUdeviceptr ptr;
    /** The device of an owning tensor (its context is made current to free it); null for views. */
    private final CudaDevice owner;
    private boolean closed;

    CudaTensor(DType dtype, int rows, int cols, CUdeviceptr ptr, CudaDevice owner) {
        this.dtype = dtype;
        this.rows = rows;
        this.cols = cols;
        this.ptr = ptr;
        this.owner = owner;
    }

    long bytes() {
        return 4L * rows * cols;
    }

    @Override
    public DType dtype() {
        return dtype;
    }

    @Override
    public int rows() {
        return rows;
    }

    @Override
    public int cols() {
        return cols;
    }

    @Override
    public Tensor rows(int n) {
        if (n < 0 || n > rows) {
            throw new IllegalArgumentException("view of " + n + " rows of a tensor with " + rows);
        }
        return new CudaTensor(dtype, n, cols, ptr, null);
    }

    @Override
    public void close() {
        if (owner != null && !closed) {
            closed = true;
            owner.makeCurrent();
            JCudaDriver.cuMemFree(ptr);
        }
    }

    @Override
    public String toString() {
        return "CudaTensor[" + dtype + " " + rows + "x" + cols + "]";
    }
}
