package io.moestream.runtime.backend.cpu;

import io.moestream.runtime.backend.Tensor;

/** A heap tensor: F32 in {@link #f}, I32 in {@link #i}; views share the array. */
final class CpuTensor implements Tensor {

    final DType dtype;
    final int rows;
    final int cols;
    final float[] f;
    final int[] i;

    CpuTensor(DType dtype, int rows, int cols, float[] f, int[] i) {
        this.dtype = dtype;
        this.rows = rows;
        this.cols = cols;
        this.f = f;
        this.i = i;
    }

    static CpuTensor allocate(DType dtype, int rows, int cols) {
        if (rows < 0 || cols <= 0) {
            throw new IllegalArgumentException("tensor shape (" + rows + ", " + cols + ") is invalid");
        }
        int n = Math.multiplyExact(rows, cols);
        return dtype == DType.F32 ? new CpuTensor(dtype, rows, cols, new float[n], null)
                : new CpuTensor(dtype, rows, cols, null, new int[n]);
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
        return new CpuTensor(dtype, n, cols, f, i);
    }

    @Override
    public void close() {}

    @Override
    public String toString() {
        return "CpuTensor[" + dtype + " " + rows + "x" + cols + "]";
    }
}
