package io.moestream.cuda;

import static jcuda.driver.JCudaDriver.cuCtxSetCurrent;
import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRetain;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuModuleGetFunction;
import static jcuda.driver.JCudaDriver.cuModuleLoadData;

import io.moestream.runtime.gguf.GgufTensor;

import java.util.HashMap;
import java.util.Map;

import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One GPU as seen by this JVM: its primary context (shared by every slot's backend), the kernel
 * modules loaded into it once, and the resident weights, uploaded once per key and reference
 * counted across the backends (the Flink slots of a TaskManager) that use them.
 */
final class CudaDevice {

    private static final Logger LOG = LoggerFactory.getLogger(CudaDevice.class);
    private static final Map<Integer, CudaDevice> DEVICES = new HashMap<>();

    final int index;
    final CUdevice device = new CUdevice();
    final CUcontext context = new CUcontext();
    final String description;
    final int multiprocessors;
    private final Map<String, CUfunction> functions = new HashMap<>();
    private final Map<String, CudaWeight> weights = new HashMap<>();
    private long residentBytes;

    private CudaDevice(int index) {
        this.index = index;
        cuDeviceGet(device, index);
        cuDevicePrimaryCtxRetain(context, device);
        cuCtxSetCurrent(context);
        this.description = CudaDriver.describe(device);
        this.multiprocessors = CudaDriver.attribute(device, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
        KernelManifest manifest = KernelManifest.load();
        for (String file : manifest.files()) {
            CUmodule module = new CUmodule();
            cuModuleLoadData(module, manifest.image(file));
            for (String entry : manifest.entries(file)) {
                CUfunction f = new CUfunction();
                cuModuleGetFunction(f, module, entry);
                functions.put(entry, f);
            }
        }
        LOG.info("cuda:{} {}: loaded {} kernels (nvcc {})", index, description, functions.size(), manifest.nvccVersion());
    }

    /** The device, opened on first use. */
    static synchronized CudaDevice get(int index) {
        String reason = CudaDriver.initReason();
        if (reason != null) {
            throw new IllegalStateException(reason);
        }
        return DEVICES.computeIfAbsent(index, CudaDevice::new);
    }

    /**
     * {@code bytes} of device memory for {@code what}, in this device's context; running out names
     * the request and the device's free and total memory.
     */
    CUdeviceptr allocate(long bytes, String what) {
        makeCurrent();
        CUdeviceptr ptr = new CUdeviceptr();
        try {
            cuMemAlloc(ptr, Math.max(bytes, 4));
        } catch (jcuda.CudaException e) {
            long[] free = new long[1];
            long[] total = new long[1];
            jcuda.driver.JCudaDriver.cuMemGetInfo(free, total);
            throw new IllegalStateException("cuda:" + index + ": cannot allocate " + bytes + " bytes for " + what + " ("
                    + free[0] + " of " + total[0] + " bytes free): " + e.getMessage(), e);
        }
        return ptr;
    }

    /** Makes this device's context current on the calling thread (Flink may call from several threads). */
    void makeCurrent() {
        cuCtxSetCurrent(context);
    }

    CUfunction function(String entry) {
        CUfunction f = functions.get(entry);
        if (f == null) {
            throw new IllegalStateException("kernel " + entry + " is not in the built modules " + functions.keySet());
        }
        return f;
    }

    /** The resident copy of {@code key}, uploaded now if no backend on this device holds it. */
    synchronized CudaWeight acquire(String key, GgufTensor t) {
        CudaWeight w = weights.get(key);
        if (w == null) {
            makeCurrent();
            WeightPacking.Packed p = WeightPacking.pack(t);
            long bytes = p.data().capacity();
            java.nio.ByteBuffer image = p.data();
            if (!image.isDirect()) { // heap tensors (tests): JCuda copies from native memory only
                image = java.nio.ByteBuffer.allocateDirect((int) bytes).put(image.duplicate().position(0)).position(0);
            }
            CUdeviceptr ptr = allocate(bytes, "weight " + t.name());
            cuMemcpyHtoD(ptr, Pointer.to(image), bytes);
            long[] ne = t.ne();
            int cols = (int) ne[0];
            int rows = ne.length >= 2 ? (int) ne[1] : 1;
            int experts = ne.length == 3 ? (int) ne[2] : 1;
            w = new CudaWeight(key, index, t.name(), t.type(), rows, cols, experts, ptr, p.scalesOffset(), bytes);
            weights.put(key, w);
            residentBytes += bytes;
        } else {
            long[] ne = t.ne();
            boolean same = w.type == t.type() && w.cols == ne[0] && w.rows == (ne.length >= 2 ? ne[1] : 1)
                    && w.experts == (ne.length == 3 ? ne[2] : 1);
            if (!same) {
                throw new IllegalArgumentException("weight key " + key + " is resident as " + w.type + " " + w.rows + "x" + w.cols
                        + " but was uploaded again as " + t.type() + " " + java.util.Arrays.toString(ne));
            }
        }
        w.references++;
        return w;
    }

    /** Drops one reference; frees the copy when none is left. */
    synchronized void release(CudaWeight w) {
        if (--w.references == 0) {
            makeCurrent();
            weights.remove(w.key);
            residentBytes -= w.bytes;
            cuMemFree(w.data);
        }
    }

    synchronized long residentBytes() {
        return residentBytes;
    }
}
