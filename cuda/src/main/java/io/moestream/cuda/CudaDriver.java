package io.moestream.cuda;

import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.JCudaDriver;

/**
 * Loads JCuda's driver binding once and says whether a device can be used. Without
 * {@code libcuda.so.1} loading throws {@link UnsatisfiedLinkError} (later {@link NoClassDefFoundError}):
 * both are {@link LinkageError}s and become a reason string, never an exception.
 */
public final class CudaDriver {

    private static String initFailure;
    private static boolean initialised;

    private CudaDriver() {}

    /** Initialises the driver once; returns why it cannot be used, or null. */
    public static synchronized String initReason() {
        if (!initialised) {
            initialised = true;
            try {
                JCudaDriver.setExceptionsEnabled(true);
                JCudaDriver.cuInit(0);
            } catch (LinkageError e) {
                initFailure = "the CUDA driver could not be loaded (" + shortCause(e) + ")";
            } catch (RuntimeException e) {
                initFailure = "cuInit failed: " + e.getMessage();
            }
        }
        return initFailure;
    }

    /** The line of JCuda's long native-load message that names the missing library, else its first line. */
    static String shortCause(Throwable e) {
        String msg = String.valueOf(e.getMessage());
        for (String line : msg.split("\\R")) {
            if (line.contains("cannot open shared object file") || line.contains("libcuda")) {
                int colon = line.indexOf(": ");
                return (colon >= 0 ? line.substring(colon + 2) : line).trim();
            }
        }
        return e.getClass().getSimpleName() + ": " + msg.lines().findFirst().orElse("");
    }

    /** Why device {@code index} cannot be used (driver, device count, kernels), or null. */
    public static String unavailableReason(int index) {
        String reason = initReason();
        if (reason != null) {
            return reason;
        }
        try {
            int[] count = {0};
            JCudaDriver.cuDeviceGetCount(count);
            if (count[0] == 0) {
                return "the CUDA driver reports no devices";
            }
            if (index < 0 || index >= count[0]) {
                return "device index " + index + " is outside 0.." + (count[0] - 1);
            }
        } catch (RuntimeException | LinkageError e) {
            return "cannot query CUDA devices: " + e.getMessage();
        }
        return KernelManifest.load().unavailableReason();
    }

    /** "NVIDIA H200 (sm_90, 132 SMs)". */
    static String describe(CUdevice dev) {
        byte[] name = new byte[256];
        JCudaDriver.cuDeviceGetName(name, name.length, dev);
        int len = 0;
        while (len < name.length && name[len] != 0) {
            len++;
        }
        return new String(name, 0, len, java.nio.charset.StandardCharsets.UTF_8) + " (sm_" + attribute(dev, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)
                + attribute(dev, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR) + ", "
                + attribute(dev, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT) + " SMs)";
    }

    static int attribute(CUdevice dev, int attribute) {
        int[] v = {0};
        JCudaDriver.cuDeviceGetAttribute(v, attribute, dev);
        return v[0];
    }
}
