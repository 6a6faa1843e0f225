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
    private final boolean owner;
    private boolean closed;

    CudaTensor(DType dtype, int rows, int cols, CUdeviceptr ptr, boolean owner) {
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
        return new CudaTensor(dtype, n, cols, ptr, false);
    }

    @Override
    public void close() {
        if (owner && !closed) {
            closed = true;
            JCudaDriver.cuMemFree(ptr);
        }
    }

    @Override
    public String toString() {
        return "CudaTensor[" + dtype + " " + rows + "x" + cols + "]";
    }
}
