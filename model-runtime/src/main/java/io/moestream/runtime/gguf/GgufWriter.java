package io.moestream.runtime.gguf;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes a GGUF v3 file: metadata, then tensor infos, then the tensors, each aligned to 32 bytes.
 * Tensor contents are produced row by row by a {@link RowSource} and encoded on the fly, so a
 * multi-GB model never has to fit in memory.
 *
 * <pre>{@code
 * new GgufWriter()
 *     .putString("general.architecture", "llama")
 *     .putUInt32("llama.block_count", 2)
 *     .addTensor("output_norm.weight", GgmlType.F32, new long[] {128}, (row, out) -> Arrays.fill(out, 1f))
 *     .write(path);
 * }</pre>
 */
public final class GgufWriter {

    /** Fills {@code out} (length ne[0]) with row {@code row} of a tensor; rows are asked for in order. */
    @FunctionalInterface
    public interface RowSource {
        void fill(long row, float[] out);
    }

    private record Entry(GgufValueType type, Object value) {}

    private record TensorSpec(String name, GgmlType type, long[] ne, RowSource source) {
        long rows() {
            long r = 1;
            for (int i = 1; i < ne.length; i++) {
                r *= ne[i];
            }
            return r;
        }

        long bytes() {
            return type.bytesFor(ne[0] * rows());
        }
    }

    private static final int ALIGNMENT = 32;

    private final Map<String, Entry> metadata = new LinkedHashMap<>();
    private final List<TensorSpec> tensors = new ArrayList<>();

    public GgufWriter putString(String key, String value) {
        return put(key, GgufValueType.STRING, value);
    }

    public GgufWriter putUInt32(String key, long value) {
        if (value < 0 || value > 0xFFFFFFFFL) {
            throw new IllegalArgumentException(key + " = " + value + " does not fit UINT32");
        }
        return put(key, GgufValueType.UINT32, value);
    }

    public GgufWriter putFloat32(String key, float value) {
        return put(key, GgufValueType.FLOAT32, value);
    }

    public GgufWriter putBool(String key, boolean value) {
        return put(key, GgufValueType.BOOL, value);
    }

    public GgufWriter putStringArray(String key, List<String> values) {
        return put(key, GgufValueType.ARRAY, new Object[] {GgufValueType.STRING, List.copyOf(values)});
    }

    public GgufWriter putInt32Array(String key, int[] values) {
        return put(key, GgufValueType.ARRAY, new Object[] {GgufValueType.INT32, values.clone()});
    }

    public GgufWriter putFloat32Array(String key, float[] values) {
        return put(key, GgufValueType.ARRAY, new Object[] {GgufValueType.FLOAT32, values.clone()});
    }

    private GgufWriter put(String key, GgufValueType type, Object value) {
        metadata.put(key, new Entry(type, value));
        return this;
    }

    /** Adds a tensor with dimensions {@code ne} (innermost first); rows are {@code ne[0]} values. */
    public GgufWriter addTensor(String name, GgmlType type, long[] ne, RowSource source) {
        if (ne.length < 1 || ne.length > 4 || ne[0] % type.blockSize() != 0 || ne[0] > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("tensor " + name + ": bad shape " + java.util.Arrays.toString(ne) + " for " + type);
        }
        tensors.add(new TensorSpec(name, type, ne.clone(), source));
        return this;
    }

    public void write(Path path) throws IOException {
        Le header = new Le();
        header.i32(0x46554747).i32(3).i64(tensors.size()).i64(metadata.size());
        for (Map.Entry<String, Entry> e : metadata.entrySet()) {
            header.str(e.getKey()).i32(e.getValue().type().id());
            writeValue(header, e.getValue().type(), e.getValue().value());
        }
        long offset = 0;
        for (TensorSpec t : tensors) {
            header.str(t.name()).i32(t.ne().length);
            for (long d : t.ne()) {
                header.i64(d);
            }
            header.i32(t.type().id()).i64(offset);
            offset = GgufFile.align(offset + t.bytes(), ALIGNMENT);
        }
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            byte[] h = header.bytes();
            writeFully(ch, ByteBuffer.wrap(h));
            pad(ch, GgufFile.align(h.length, ALIGNMENT) - h.length);
            for (TensorSpec t : tensors) {
                writeTensor(ch, t);
                pad(ch, GgufFile.align(t.bytes(), ALIGNMENT) - t.bytes());
            }
        }
    }

    private static void writeTensor(FileChannel ch, TensorSpec t) throws IOException {
        int cols = (int) t.ne()[0];
        int rowBytes = (int) t.type().bytesFor(cols);
        int rowsPerChunk = Math.max(1, (1 << 20) / rowBytes);
        ByteBuffer buf = ByteBuffer.allocate(rowBytes * rowsPerChunk).order(ByteOrder.LITTLE_ENDIAN);
        float[] row = new float[cols];
        for (long r = 0; r < t.rows(); r++) {
            t.source().fill(r, row);
            BlockQuantizer.encode(t.type(), row, buf);
            if (!buf.hasRemaining()) {
                buf.flip();
                writeFully(ch, buf);
                buf.clear();
            }
        }
        buf.flip();
        writeFully(ch, buf);
    }

    @SuppressWarnings("unchecked")
    private static void writeValue(Le out, GgufValueType type, Object value) {
        switch (type) {
            case STRING -> out.str((String) value);
            case UINT32 -> out.i32((int) (long) (Long) value);
            case FLOAT32 -> out.f32((Float) value);
            case BOOL -> out.u8((Boolean) value ? 1 : 0);
            case ARRAY -> {
                Object[] a = (Object[]) value;
                GgufValueType et = (GgufValueType) a[0];
                out.i32(et.id());
                if (et == GgufValueType.STRING) {
                    List<String> list = (List<String>) a[1];
                    out.i64(list.size());
                    list.forEach(out::str);
                } else if (et == GgufValueType.FLOAT32) {
                    float[] floats = (float[]) a[1];
                    out.i64(floats.length);
                    for (float v : floats) {
                        out.f32(v);
                    }
                } else {
                    int[] ints = (int[]) a[1];
                    out.i64(ints.length);
                    for (int v : ints) {
                        out.i32(v);
                    }
                }
            }
            default -> throw new IllegalStateException(type.toString());
        }
    }

    private static void pad(FileChannel ch, long n) throws IOException {
        writeFully(ch, ByteBuffer.allocate((int) n));
    }

    private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }

    /** A little-endian byte sink for the header. */
    private static final class Le {
        private final ByteArrayOutputStream out = new ByteArrayOutputStream();
        private final ByteBuffer scratch = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);

        Le u8(int v) {
            out.write(v);
            return this;
        }

        Le i32(int v) {
            scratch.clear();
            out.write(scratch.putInt(v).array(), 0, 4);
            return this;
        }

        Le i64(long v) {
            scratch.clear();
            out.write(scratch.putLong(v).array(), 0, 8);
            return this;
        }

        Le f32(float v) {
            return i32(Float.floatToRawIntBits(v));
        }

        Le str(String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            i64(b.length);
            out.write(b, 0, b.length);
            return this;
        }

        byte[] bytes() {
            return out.toByteArray();
        }
    }
}
