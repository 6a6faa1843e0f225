package io.moestream.cuda;

import io.moestream.runtime.backend.WeightHandle;
import io.moestream.runtime.gguf.GgmlType;

import jcuda.driver.CUdeviceptr;

/** A weight resident on one device in the {@link WeightPacking} layout; shared by the backends of that device. */
final class CudaWeight implements WeightHandle {

    final String key;
    final int device;
    final String name;
    final GgmlType type;
    final int rows;
    final int cols;
    final int experts;
    final CUdeviceptr data;    // quants or plain elements
    final CUdeviceptr scales;  // F16 block scales (Q8_0, Q4_0), else null
    final long bytes;
    int references;

    CudaWeight(String key, int device, String name, GgmlType type, int rows, int cols, int experts, CUdeviceptr data,
               long scalesOffset, long bytes) {
        this.key = key;
        this.device = device;
        this.name = name;
        this.type = type;
        this.rows = rows;
        this.cols = cols;
        this.experts = experts;
        this.data = data;
        this.scales = scalesOffset > 0 ? data.withByteOffset(scalesOffset) : null;
        this.bytes = bytes;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public GgmlType type() {
        return type;
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
    public int experts() {
        return experts;
    }

    @Override
    public String toString() {
        return "CudaWeight[" + name + " " + type + " " + experts + "x" + rows + "x" + cols + " on cuda:" + device + "]";
    }
}
