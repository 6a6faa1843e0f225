package io.moestream.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Arrays;
import java.util.List;
import java.util.Properties;

/**
 * What {@code build-kernels.sh} left on the class path: {@code kernels/kernels.properties} says
 * whether nvcc ran, with which version, and the entry points of each kernel file; the fatbins sit
 * next to it.
 */
public final class KernelManifest {

    static final String DIR = "/io/moestream/cuda/kernels/";

    private final Properties p;

    private KernelManifest(Properties p) {
        this.p = p;
    }

    /** The manifest packaged with this module (a "missing" one when the resources are absent). */
    public static KernelManifest load() {
        Properties p = new Properties();
        try (InputStream in = KernelManifest.class.getResourceAsStream(DIR + "kernels.properties")) {
            if (in == null) {
                p.setProperty("status", "missing");
                p.setProperty("reason", "kernels.properties is not on the class path (the cuda module was not built with Maven)");
            } else {
                p.load(in);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return new KernelManifest(p);
    }

    /** Whether nvcc built the kernels. */
    public boolean built() {
        return "built".equals(p.getProperty("status"));
    }

    /** Why there are no kernels, or null when they were built. */
    public String unavailableReason() {
        return built() ? null : "no CUDA kernels were built: " + p.getProperty("reason", p.getProperty("status"));
    }

    public String nvccVersion() {
        return p.getProperty("nvcc", "");
    }

    /** Kernel files (stems of {@code src/main/cuda/*.cu}). */
    public List<String> files() {
        String f = p.getProperty("files", "");
        return f.isEmpty() ? List.of() : Arrays.asList(f.split(","));
    }

    /** Entry points ({@code extern "C" __global__} functions) of one file. */
    public List<String> entries(String file) {
        String e = p.getProperty("entries." + file, "");
        return e.isEmpty() ? List.of() : Arrays.asList(e.split(","));
    }

    /** The fatbin of one file (sm_90 SASS + PTX), for {@code cuModuleLoadData}. */
    public byte[] image(String file) {
        try (InputStream in = KernelManifest.class.getResourceAsStream(DIR + file + ".fatbin")) {
            if (in == null) {
                throw new IllegalStateException("kernel image " + file + ".fatbin is missing although the manifest lists it");
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
