package io.moestream.runtime.kernel;

import io.moestream.runtime.gguf.GgmlType;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Locale;

/**
 * Q8_0 and Q4_0 products in C ({@code src/main/c/moestream_kernels.c}, built into the jar by the
 * module's build when gcc is present), through JNI; every other weight type, and any call the
 * native code cannot take (a heap buffer, an activation prepared before native kernels existed),
 * goes to the Java kernels it wraps. Results are those of {@link ScalarKernels}, bit for bit: the
 * integer block sums use int8 dot-product instructions (AVX-512 VNNI, or AVX2), which the Java 17
 * Vector API cannot express, and the float steps are llama.cpp's in its order.
 *
 * <p>Why native code on the CPU path: see docs/runtime.md ("Native kernels"). Safety: every
 * offset, length and activation is checked here before the call, against the buffer's capacity,
 * so a corrupt model cannot make the C code read outside the file's mapping.
 */
final class NativeKernels extends Kernels {

    /** Activations per native batch call (the C side's stack arrays). */
    static final int MAX_BATCH = 256;
    /** Activations per packed (AVX-512) batch call: bounds the packed copy to a few MB per thread. */
    static final int PACKED_BATCH = 64;
    /** Rows per group of a repacked Q4_0 matrix, and bytes per group and block (kernels_zmm.h). */
    private static final int Q4_GROUP_ROWS = 8;
    private static final int Q4_REPACKED_BLOCK = 144;
    private static final String RESOURCE = "native/linux-x86_64/libmoestream_kernels.so";
    private static final ThreadLocal<float[]> OUT = ThreadLocal.withInitial(() -> new float[0]);
    private static final ThreadLocal<long[]> ADDRESSES = ThreadLocal.withInitial(() -> new long[MAX_BATCH]);
    private static final ThreadLocal<Packed> PACKED = ThreadLocal.withInitial(Packed::new);
    private static String loadError;
    /** Set once the direct memory limit refused a repacked copy: later matrices keep their rows in place without asking again. */
    private static volatile boolean repackRefused;
    private static int level = -1;

    private final Kernels java;
    private final int vnni;

    private NativeKernels(Kernels java, int level) {
        this.java = java;
        this.vnni = level >= 2 ? 1 : 0;
        Activation.writeNativeForm = true;
    }

    /**
     * The native kernels in front of {@code java}, or null (with {@link #unavailableReason()} set)
     * when the library is missing from the class path, does not load, or the CPU lacks AVX2/FMA/F16C.
     */
    static NativeKernels orNull(Kernels java) {
        return orNull(java, Integer.getInteger("moestream.kernels.native.level", 2));
    }

    /** As {@link #orNull(Kernels)}, using no instruction set above {@code maxLevel} (1: AVX2 only; tests). */
    static synchronized NativeKernels orNull(Kernels java, int maxLevel) {
        if (level < 0) {
            level = load();
        }
        int l = Math.min(level, maxLevel);
        return l > 0 ? new NativeKernels(java, l) : null;
    }

    /** The loaded library's level (0: not loaded or the CPU cannot run it; 1: AVX2; 2: AVX-512 VNNI), loading it on first use. */
    static synchronized int loadedLevel() {
        if (level < 0) {
            level = load();
        }
        return level;
    }

    /** Why {@link #orNull} gave null ("" when it did not). */
    static synchronized String unavailableReason() {
        return loadError == null ? "" : loadError;
    }

    /** Records why the loaded kernels were not used (a failed self-test). */
    static synchronized void unusable(String reason) {
        loadError = "self-test failed: " + reason;
    }

    private static int load() {
        String arch = System.getProperty("os.name", "").toLowerCase(Locale.ROOT) + "-" + System.getProperty("os.arch", "");
        if (!arch.equals("linux-amd64")) {
            loadError = "no native kernels for " + arch;
            return 0;
        }
        try (InputStream in = NativeKernels.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                loadError = "the jar has no " + RESOURCE + " (built without gcc)";
                return 0;
            }
            Path file = Files.createTempFile("moestream_kernels", ".so");
            file.toFile().deleteOnExit();
            Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
            System.load(file.toAbsolutePath().toString());
            int l = level();
            if (l == 0) {
                loadError = "the CPU lacks AVX2, FMA or F16C";
            }
            return l;
        } catch (IOException | LinkageError | SecurityException e) {
            loadError = "native kernels did not load: " + e;
            return 0;
        }
    }

    /** 0: no kernel runs on this CPU; 1: AVX2 kernels; 2: AVX-512 VNNI kernels. */
    private static native int level();

    /** The address of a direct buffer's first byte. */
    static native long address(ByteBuffer direct);

    private static native void rows(int vnni, int q4, ByteBuffer w, long off, int rowBytes, int rows, int blocks,
                                    long x, float[] out, int outIndex);

    private static native void batch(int q4, ByteBuffer w, long off, int rowBytes, int rows, int blocks,
                                     long[] xs, int n, float[] out);

    private static native long packedBytes(int q4, int n, int blocks);

    private static native void repackQ4(ByteBuffer w, long off, int rowBytes, int groups, int blocks, ByteBuffer to,
                                        long toOff);

    private static native void groupsQ4(ByteBuffer repacked, long off, int groups, int blocks, long x, float[] out,
                                        int outIndex);

    /**
     * {@link Activation}'s Q8_0 quantization of {@code x[off .. off + n)} into {@code q}, {@code qi}
     * (null: skipped), {@code d} and the native form at {@code to}; the caller checks the sizes.
     */
    static native void quantize(float[] x, int off, int n, short[] q, short[] qi, float[] d, long to);

    private static native void pack(int q4, long[] xs, int n, int blocks, long to);

    /** Attention over float32 blocks (AVX-512 level; every size checked by {@link #attendF32}). */
    private static native void attendNative(Object[] k, Object[] v, int blocks, int bt, int headDim, int len, int a, int b,
                                            float[] q, int qOff, int heads, float scale, Object[] att, int lanes, float[] out,
                                            int outOff);

    private static native void batchPacked(int q4, ByteBuffer w, long off, int rowBytes, int rows, int blocks, long packed,
                                           int n, float[] out);

    @Override
    public void scoresF32(float[] k, int headDim, int from, int to, float[] q, int qOff, float scale, float[] att, int base) {
        java.scoresF32(k, headDim, from, to, q, qOff, scale, att, base);
    }

    @Override
    public void swiglu(float[] g, float[] u, int n) {
        java.swiglu(g, u, n);
    }

    /** Native (AVX-512 level) for heads of a multiple of 64, up to 8 heads and 1024 blocks; the Java steps otherwise. */
    @Override
    public void attendF32(float[][] k, float[][] v, int bt, int headDim, int len, int a, int b, float[] q, int qOff,
                          int heads, float scale, float[][] att, int lanes, float[] out, int outOff) {
        if (vnni == 1 && attendable(k, v, bt, headDim, len, a, b, q, qOff, heads, att, lanes, out, outOff)) {
            attendNative(k, v, (len + bt - 1) / bt, bt, headDim, len, a, b, q, qOff, heads, scale, att, lanes, out, outOff);
        } else {
            java.attendF32(k, v, bt, headDim, len, a, b, q, qOff, heads, scale, att, lanes, out, outOff);
        }
    }

    /** Whether the native attention may run on these arguments: every array it touches long enough. */
    private static boolean attendable(float[][] k, float[][] v, int bt, int headDim, int len, int a, int b, float[] q,
                                      int qOff, int heads, float[][] att, int lanes, float[] out, int outOff) {
        if (headDim <= 0 || headDim % 64 != 0 || (lanes != 64 && lanes != 16) || heads < 1 || heads > 8 || bt < 1
                || len < 1 || a < 0 || a > b || b > len || qOff < 0 || outOff < 0
                || (long) qOff + (long) heads * headDim > q.length || (long) outOff + (long) heads * headDim > out.length
                || att.length < heads) {
            return false;
        }
        int blocks = (len + bt - 1) / bt;
        if (blocks > 1024 || k.length < blocks || v.length < blocks) {
            return false;
        }
        for (int g = 0; g < heads; g++) {
            if (att[g] == null || att[g].length < ((len + 15) & ~15)) {
                return false;
            }
        }
        for (int i = 0; i < blocks; i++) {
            int first = i * bt;
            int end = Math.min(len, first + bt);
            boolean visible = first < a || end > b;
            long needed = (long) (end - first) * headDim;
            if (visible && (k[i] == null || v[i] == null || k[i].length < needed || v[i].length < needed)) {
                return false;
            }
        }
        return true;
    }

    @Override
    public void scoresInt8(byte[] codes, int tokens, int hd, float[] qs, int from, int to, float bias, float scale,
                           float[] att, int base) {
        java.scoresInt8(codes, tokens, hd, qs, from, to, bias, scale, att, base);
    }

    @Override
    public void accumulateInt8(byte[] codes, int hd, int group, short[] scales, short[] mins, float[] p, int base,
                               int from, int to, float[] acc, int lanes) {
        java.accumulateInt8(codes, hd, group, scales, mins, p, base, from, to, acc, lanes);
    }

    @Override
    public void accumulateInt8Columns(byte[] codes, int tokens, int hd, float[] mins, float[] scales, float[] p, int base,
                                      int from, int to, float[] acc, int lanes) {
        java.accumulateInt8Columns(codes, tokens, hd, mins, scales, p, base, from, to, acc, lanes);
    }

    @Override
    public void maskedSoftmax(float[] att, int len, int a, int b, float max) {
        java.maskedSoftmax(att, len, a, b, max);
    }

    @Override
    public void valueSumsF32(float[][] v, int bt, int headDim, int len, int a, int b, float[][] p, int heads, int lanes,
                             float[] out, int outOff) {
        java.valueSumsF32(v, bt, headDim, len, a, b, p, heads, lanes, out, outOff);
    }

    @Override
    public void accumulateF32(float[] v, int headDim, int from, int to, float[] p, int base, float[] acc, int lanes) {
        java.accumulateF32(v, headDim, from, to, p, base, acc, lanes);
    }

    @Override
    public void reduceLanes(float[] acc, int lanes, int hd, float[] out, int outOff) {
        java.reduceLanes(acc, lanes, hd, out, outOff);
    }

    /**
     * Native row products are several times faster than the Java ones, so tasks are larger: 2^20
     * multiplies (512 rows of 2048 for one activation), which also gives each of a task's row
     * streams a long forward run through memory (1.07-1.15x decode at batch 1 over 2^18).
     */
    @Override
    public long taskWork(int activations) {
        return 1 << 20;
    }

    /** Packed activations of one task stay in the core's L2 cache while the task's rows pass over them. */
    @Override
    public int taskActivations() {
        return PACKED_BATCH;
    }

    @Override
    public String name() {
        return "native-" + (vnni == 1 ? "avx512vnni" : "avx2") + "+" + java.name();
    }

    @Override
    public float dot(GgmlType type, ByteBuffer w, int off, int cols, Activation x) {
        float[] out = new float[1];
        dotRows(type, w, off, (int) type.bytesFor(cols), 1, cols, x, out, 0);
        return out[0];
    }

    @Override
    public void dotRows(GgmlType type, ByteBuffer w, int off, int rowBytes, int rows, int cols, Activation x,
                        float[] out, int outIndex) {
        if (!takes(type, w, off, rowBytes, rows, cols) || !ready(x, cols)) {
            java.dotRows(type, w, off, rowBytes, rows, cols, x, out, outIndex);
            return;
        }
        if (outIndex < 0 || outIndex + rows > out.length) {
            throw new IndexOutOfBoundsException("rows [" + outIndex + ", " + (outIndex + rows) + ") of " + out.length);
        }
        rows(vnni, type == GgmlType.Q4_0 ? 1 : 0, w, off, rowBytes, rows, cols / 32, x.nativeAddress, out, outIndex);
    }

    /**
     * Q4_0 rows eight at a time (kernels_zmm.h, {@code q4_repack}: per block, the eight rows' scales
     * then their quants, 144 bytes), for the AVX-512 level; in a direct buffer (heap memory outside
     * the Java heap, freed with the buffer). Null at the AVX2 level, for fewer than 8 rows, past 2 GiB,
     * or once the direct memory limit has refused one.
     */
    @Override
    public ByteBuffer repackQ4_0(ByteBuffer w, int off, int rowBytes, int rows, int cols) {
        int groups = rows / Q4_GROUP_ROWS;
        if (vnni != 1 || groups == 0 || repackRefused || !takes(GgmlType.Q4_0, w, off, rowBytes, rows, cols)) {
            return null;
        }
        long bytes = (long) groups * (cols / 32) * Q4_REPACKED_BLOCK;
        if (bytes > Integer.MAX_VALUE) {
            return null;
        }
        ByteBuffer to;
        try {
            to = ByteBuffer.allocateDirect((int) bytes);
        } catch (OutOfMemoryError e) {
            repackRefused = true;
            return null;
        }
        repackQ4(w, off, rowBytes, groups, cols / 32, to, 0);
        return to;
    }

    @Override
    public boolean dotRowsRepacked(ByteBuffer repacked, int first, int rows, int cols, Activation x, float[] out,
                                   int outIndex) {
        if (vnni != 1 || !ready(x, cols)) {
            return false;
        }
        long block = (long) (cols / 32) * Q4_REPACKED_BLOCK;
        if (!repacked.isDirect() || cols <= 0 || cols % 32 != 0 || first < 0 || rows <= 0 || first % Q4_GROUP_ROWS != 0
                || rows % Q4_GROUP_ROWS != 0 || (first + (long) rows) / Q4_GROUP_ROWS * block > repacked.capacity()) {
            throw new IndexOutOfBoundsException("repacked rows [" + first + ", " + (first + rows) + ") of " + cols
                    + " values do not fit a buffer of " + repacked.capacity() + " bytes");
        }
        if (outIndex < 0 || outIndex + rows > out.length) {
            throw new IndexOutOfBoundsException("rows [" + outIndex + ", " + (outIndex + rows) + ") of " + out.length);
        }
        groupsQ4(repacked, first / Q4_GROUP_ROWS * block, rows / Q4_GROUP_ROWS, cols / 32, x.nativeAddress, out, outIndex);
        return true;
    }

    @Override
    public void dots(GgmlType type, ByteBuffer w, int off, int cols, Activation[] xs, int n, float[][] out, int outIndex) {
        dotsRows(type, w, off, (int) type.bytesFor(cols), 1, cols, xs, 0, n, out, outIndex);
    }

    @Override
    public void dotsRows(GgmlType type, ByteBuffer w, int off, int rowBytes, int rows, int cols, Activation[] xs, int from,
                         int n, float[][] out, int outIndex) {
        boolean native_ = takes(type, w, off, rowBytes, rows, cols);
        for (int k = 0; k < n && native_; k++) {
            native_ = ready(xs[from + k], cols);
        }
        if (!native_) {
            java.dotsRows(type, w, off, rowBytes, rows, cols, xs, from, n, out, outIndex);
            return;
        }
        long[] addresses = ADDRESSES.get();
        int q4 = type == GgmlType.Q4_0 ? 1 : 0;
        int blocks = cols / 32;
        int chunk = vnni == 1 ? PACKED_BATCH : MAX_BATCH;
        for (int k0 = from; k0 < from + n; k0 += chunk) {
            int m = Math.min(chunk, from + n - k0);
            float[] results = OUT.get();
            if (results.length < m * rows) {
                results = new float[m * rows];
                OUT.set(results);
            }
            if (vnni == 1) {
                Packed p = PACKED.get();
                if (!p.holds(type, blocks, xs, k0, m)) {
                    p.pack(type, blocks, xs, k0, m, addresses);
                }
                batchPacked(q4, w, off, rowBytes, rows, blocks, p.address, m, results);
            } else {
                for (int k = 0; k < m; k++) {
                    addresses[k] = xs[k0 + k].nativeAddress;
                }
                batch(q4, w, off, rowBytes, rows, blocks, addresses, m, results);
            }
            for (int k = 0; k < m; k++) {
                System.arraycopy(results, k * rows, out[k0 + k], outIndex, rows);
            }
        }
    }

    /**
     * This thread's activations packed for the AVX-512 batched kernels, kept while the same
     * activations (same objects, not re-prepared since) come back: a product's row chunks all
     * use the packing of its first chunk on this thread.
     */
    private static final class Packed {
        private ByteBuffer buffer;
        private long address;
        private GgmlType type;
        private int blocks;
        private int n;
        private final Activation[] acts = new Activation[PACKED_BATCH];
        private final int[] versions = new int[PACKED_BATCH];

        boolean holds(GgmlType type, int blocks, Activation[] xs, int from, int n) {
            if (type != this.type || blocks != this.blocks || n != this.n) {
                return false;
            }
            for (int k = 0; k < n; k++) {
                Activation x = xs[from + k];
                if (acts[k] != x || versions[k] != x.version) {
                    return false;
                }
            }
            return true;
        }

        void pack(GgmlType type, int blocks, Activation[] xs, int from, int n, long[] addresses) {
            int q4 = type == GgmlType.Q4_0 ? 1 : 0;
            long bytes = packedBytes(q4, n, blocks);
            if (buffer == null || buffer.capacity() < bytes) {
                buffer = ByteBuffer.allocateDirect(Math.toIntExact(bytes + 63 & ~63L) + 64).alignedSlice(64);
                address = address(buffer);
            }
            for (int k = 0; k < n; k++) {
                addresses[k] = xs[from + k].nativeAddress;
                acts[k] = xs[from + k];
                versions[k] = xs[from + k].version;
            }
            NativeKernels.pack(q4, addresses, n, blocks, address);
            this.type = type;
            this.blocks = blocks;
            this.n = n;
        }
    }

    /** Whether the native code takes these rows: a quantized type in a direct buffer, every byte inside it. */
    private static boolean takes(GgmlType type, ByteBuffer w, int off, int rowBytes, int rows, int cols) {
        if ((type != GgmlType.Q8_0 && type != GgmlType.Q4_0) || !w.isDirect() || rows <= 0) {
            return false;
        }
        long bytes = type.bytesFor(cols);
        if (cols <= 0 || cols % 32 != 0 || off < 0 || rowBytes < bytes
                || off + (long) (rows - 1) * rowBytes + bytes > w.capacity()) {
            throw new IndexOutOfBoundsException(rows + " rows of " + cols + " " + type + " values from byte " + off
                    + ", " + rowBytes + " bytes apart, do not fit a buffer of " + w.capacity() + " bytes");
        }
        return true;
    }

    private static boolean ready(Activation x, int cols) {
        if (x.length() != cols) {
            throw new IllegalArgumentException("activation of " + x.length() + " values for rows of " + cols);
        }
        return x.nativeReady && x.type().blockSize() == 32; // a Q8_0 native form, not a Q8_K one
    }
}
