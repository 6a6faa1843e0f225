package io.moestream.runtime.gguf;

import java.io.IOException;
import java.nio.BufferUnderflowException;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A parsed GGUF (v2/v3) file: metadata key/values and memory-mapped tensors.
 *
 * <p>Invariants after {@link #open}: every tensor lies inside the file, is aligned to
 * {@link #alignment()}, has 1..4 positive dimensions whose innermost one is a multiple of its type's
 * block size, and is mapped read-only on its own ({@link FileChannel#map}, so no 2 GiB limit for
 * the file, only per tensor). Any violation fails with a {@link GgufFormatException} naming the
 * offending key or tensor; counts and lengths are checked against the bytes left before anything
 * is allocated, so a corrupt header cannot cause an OutOfMemoryError.
 *
 * <p>Metadata values are {@link Long} (all integer types), {@link Float}/{@link Double},
 * {@link Boolean}, {@link String}, or for arrays {@code long[]}, {@code double[]}, {@code boolean[]},
 * {@code List<String>} (arrays of arrays become {@code List<Object>}).
 */
public final class GgufFile {

    private static final int MAGIC = 0x46554747; // "GGUF" little-endian
    private static final int MAX_DIMS = 4;
    private static final long MAX_STRING_BYTES = 1L << 24;
    private static final int MAX_HEADER_MAP = Integer.MAX_VALUE - 8;

    private final Path path;
    private final int version;
    private final long fileSize;
    private final int alignment;
    private final long dataOffset;
    private final Map<String, Object> metadata;
    private final Map<String, GgufValueType> metadataTypes;
    private final Map<String, GgufTensor> tensors;

    private GgufFile(Path path, int version, long fileSize, int alignment, long dataOffset,
            Map<String, Object> metadata, Map<String, GgufValueType> metadataTypes, Map<String, GgufTensor> tensors) {
        this.path = path;
        this.version = version;
        this.fileSize = fileSize;
        this.alignment = alignment;
        this.dataOffset = dataOffset;
        this.metadata = Collections.unmodifiableMap(metadata);
        this.metadataTypes = Collections.unmodifiableMap(metadataTypes);
        this.tensors = Collections.unmodifiableMap(tensors);
    }

    /** Parses the header of {@code path} and maps each tensor. */
    public static GgufFile open(Path path) throws IOException {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = ch.size();
            MappedByteBuffer header = ch.map(FileChannel.MapMode.READ_ONLY, 0, Math.min(size, MAX_HEADER_MAP));
            header.order(ByteOrder.LITTLE_ENDIAN);
            return new Parser(path, ch, size, header).parse();
        }
    }

    public Path path() {
        return path;
    }

    public int version() {
        return version;
    }

    public long fileSize() {
        return fileSize;
    }

    public int alignment() {
        return alignment;
    }

    /** File offset where tensor data starts. */
    public long dataOffset() {
        return dataOffset;
    }

    /** All metadata in file order. */
    public Map<String, Object> metadata() {
        return metadata;
    }

    /** All tensors in file order. */
    public Map<String, GgufTensor> tensors() {
        return tensors;
    }

    public boolean has(String key) {
        return metadata.containsKey(key);
    }

    /** The stored type of a key, or {@code null} when absent. */
    public GgufValueType typeOf(String key) {
        return metadataTypes.get(key);
    }

    /** The tensor with this name, or {@code null}. */
    public GgufTensor tensorOrNull(String name) {
        return tensors.get(name);
    }

    /** The tensor with this name; fails naming it when absent. */
    public GgufTensor tensor(String name) throws GgufFormatException {
        GgufTensor t = tensors.get(name);
        if (t == null) {
            throw new GgufFormatException(path.getFileName() + ": missing tensor '" + name + "'");
        }
        return t;
    }

    public String getString(String key) throws GgufFormatException {
        return require(key, String.class, "a string");
    }

    public String getString(String key, String fallback) throws GgufFormatException {
        return has(key) ? getString(key) : fallback;
    }

    /** An integer value that fits in an int. */
    public int getInt(String key) throws GgufFormatException {
        long v = require(key, Long.class, "an integer");
        if (v < Integer.MIN_VALUE || v > Integer.MAX_VALUE) {
            throw new GgufFormatException(path.getFileName() + ": key '" + key + "' = " + v + " is out of range");
        }
        return (int) v;
    }

    public int getInt(String key, int fallback) throws GgufFormatException {
        return has(key) ? getInt(key) : fallback;
    }

    /** A float or double value (an integer is accepted too). */
    public double getDouble(String key) throws GgufFormatException {
        Object v = metadata.get(key);
        if (v instanceof Number n && !(v instanceof Long)) {
            return n.doubleValue();
        }
        if (v instanceof Long n) {
            return n;
        }
        throw missingOrWrong(key, "a number");
    }

    public double getDouble(String key, double fallback) throws GgufFormatException {
        return has(key) ? getDouble(key) : fallback;
    }

    public boolean getBoolean(String key, boolean fallback) throws GgufFormatException {
        return has(key) ? require(key, Boolean.class, "a bool") : fallback;
    }

    @SuppressWarnings("unchecked")
    public List<String> getStringArray(String key) throws GgufFormatException {
        Object v = metadata.get(key);
        if (v instanceof List<?> list && list.stream().allMatch(e -> e instanceof String)) {
            return (List<String>) list;
        }
        throw missingOrWrong(key, "an array of strings");
    }

    public long[] getIntegerArray(String key) throws GgufFormatException {
        return require(key, long[].class, "an array of integers");
    }

    /** An array of FLOAT32 or FLOAT64 values (e.g. {@code tokenizer.ggml.scores}). */
    public double[] getFloatArray(String key) throws GgufFormatException {
        return require(key, double[].class, "an array of floats");
    }

    private <T> T require(String key, Class<T> type, String what) throws GgufFormatException {
        Object v = metadata.get(key);
        if (type.isInstance(v)) {
            return type.cast(v);
        }
        throw missingOrWrong(key, what);
    }

    private GgufFormatException missingOrWrong(String key, String what) {
        if (!metadata.containsKey(key)) {
            return new GgufFormatException(path.getFileName() + ": missing required key '" + key + "'");
        }
        return new GgufFormatException(path.getFileName() + ": key '" + key + "' should be " + what
                + " but is " + metadataTypes.get(key));
    }

    /** Reads the header with bounds checks; every read names what it was reading when it fails. */
    private static final class Parser {
        private final Path path;
        private final FileChannel channel;
        private final long fileSize;
        private final MappedByteBuffer buf;
        private String reading = "header";

        Parser(Path path, FileChannel channel, long fileSize, MappedByteBuffer buf) {
            this.path = path;
            this.channel = channel;
            this.fileSize = fileSize;
            this.buf = buf;
        }

        GgufFile parse() throws IOException {
            try {
                return parseUnchecked();
            } catch (BufferUnderflowException e) {
                throw fail("file is truncated while reading " + reading);
            }
        }

        private GgufFile parseUnchecked() throws IOException {
            if (fileSize < 24) {
                throw fail("file is too short for a GGUF header (" + fileSize + " bytes)");
            }
            int magic = buf.getInt();
            if (magic != MAGIC) {
                throw fail(String.format("not a GGUF file (magic 0x%08x, expected 0x%08x \"GGUF\")", magic, MAGIC));
            }
            int version = buf.getInt();
            if (version != 2 && version != 3) {
                throw fail("unsupported GGUF version " + version + " (supported: 2, 3)");
            }
            long tensorCount = buf.getLong();
            long kvCount = buf.getLong();
            checkCount("metadata key/value count", kvCount, 8 + 8 + 4);
            checkCount("tensor count", tensorCount, 8 + 4 + 8 + 4 + 8);

            Map<String, Object> metadata = new LinkedHashMap<>();
            Map<String, GgufValueType> types = new LinkedHashMap<>();
            String previous = null; // named in errors: a corrupt value desynchronizes the keys after it
            for (long i = 0; i < kvCount; i++) {
                String after = previous == null ? "" : ", after '" + previous + "'";
                reading = "metadata key #" + i + " (" + (previous == null ? "the first" : "the one after '" + previous + "'") + ")";
                String key = readString();
                reading = "metadata value of '" + key + "' (key #" + i + after + ")";
                previous = key;
                GgufValueType type = readValueType();
                if (metadata.containsKey(key)) {
                    throw fail("duplicate metadata key '" + key + "'");
                }
                metadata.put(key, readValue(type, 0));
                types.put(key, type);
            }

            int alignment = 32;
            if (metadata.containsKey("general.alignment")) {
                Object a = metadata.get("general.alignment");
                if (!(a instanceof Long l) || l <= 0 || l > (1 << 20) || Long.bitCount(l) != 1) {
                    throw fail("general.alignment must be a power of two integer, got " + a);
                }
                alignment = (int) (long) (Long) a;
            }

            List<Object[]> infos = new ArrayList<>();
            String previousTensor = null;
            for (long i = 0; i < tensorCount; i++) {
                reading = "tensor info #" + i + " (after " + (previousTensor == null ? "metadata key '" + previous : "tensor '" + previousTensor) + "')";
                String name = readString();
                reading = "tensor info of '" + name + "'";
                previousTensor = name;
                int nDims = buf.getInt();
                if (nDims < 1 || nDims > MAX_DIMS) {
                    throw fail("tensor '" + name + "' has " + nDims + " dimensions (1.." + MAX_DIMS + " allowed)");
                }
                long[] ne = new long[nDims];
                for (int d = 0; d < nDims; d++) {
                    ne[d] = buf.getLong();
                    if (ne[d] <= 0 || ne[d] > (1L << 40)) {
                        throw fail("tensor '" + name + "' has invalid dimension ne[" + d + "] = " + ne[d]);
                    }
                }
                int typeId = buf.getInt();
                GgmlType type = GgmlType.byId(typeId);
                if (type == null) {
                    throw fail("tensor '" + name + "' has unknown ggml type id " + typeId);
                }
                long offset = buf.getLong();
                infos.add(new Object[] {name, ne, type, offset});
            }
            long dataOffset = align(buf.position(), alignment);
            if (dataOffset > fileSize) {
                throw fail("file is truncated: tensor data would start at " + dataOffset + " but the file has " + fileSize + " bytes");
            }

            Map<String, GgufTensor> tensors = new LinkedHashMap<>();
            for (Object[] info : infos) {
                String name = (String) info[0];
                long[] ne = (long[]) info[1];
                GgmlType type = (GgmlType) info[2];
                long offset = (Long) info[3];
                if (tensors.containsKey(name)) {
                    throw fail("duplicate tensor '" + name + "'");
                }
                if (ne[0] % type.blockSize() != 0) {
                    throw fail("tensor '" + name + "' has ne[0] = " + ne[0] + ", not a multiple of the " + type
                            + " block size " + type.blockSize());
                }
                long bytes;
                try {
                    long elements = 1;
                    for (long d : ne) {
                        elements = Math.multiplyExact(elements, d);
                    }
                    bytes = type.bytesFor(elements);
                } catch (ArithmeticException e) {
                    throw fail("tensor '" + name + "' has an overflowing shape " + java.util.Arrays.toString(ne));
                }
                if (offset < 0 || offset % alignment != 0) {
                    throw fail("tensor '" + name + "' has offset " + offset + ", not aligned to " + alignment);
                }
                if (offset > fileSize - dataOffset || bytes > fileSize - dataOffset - offset) {
                    throw fail("file is truncated or corrupt: tensor '" + name + "' (" + bytes + " bytes at data offset "
                            + offset + ") extends past the end of the file (" + fileSize + " bytes, data starts at "
                            + dataOffset + ")");
                }
                if (bytes > Integer.MAX_VALUE) {
                    throw fail("tensor '" + name + "' is " + bytes + " bytes; tensors over 2 GiB are not supported");
                }
                MappedByteBuffer data = channel.map(FileChannel.MapMode.READ_ONLY, dataOffset + offset, bytes);
                data.order(ByteOrder.LITTLE_ENDIAN);
                tensors.put(name, new GgufTensor(name, type, ne, data));
            }
            return new GgufFile(path, version, fileSize, alignment, dataOffset, metadata, types, tensors);
        }

        private GgufValueType readValueType() throws GgufFormatException {
            int id = buf.getInt();
            GgufValueType t = GgufValueType.byId(id);
            if (t == null) {
                throw fail("unknown metadata value type " + id + " in " + reading);
            }
            return t;
        }

        private Object readValue(GgufValueType type, int depth) throws GgufFormatException {
            switch (type) {
                case UINT8: return (long) (buf.get() & 0xFF);
                case INT8: return (long) buf.get();
                case UINT16: return (long) (buf.getShort() & 0xFFFF);
                case INT16: return (long) buf.getShort();
                case UINT32: return buf.getInt() & 0xFFFFFFFFL;
                case INT32: return (long) buf.getInt();
                case UINT64:
                case INT64: return buf.getLong();
                case FLOAT32: return buf.getFloat();
                case FLOAT64: return buf.getDouble();
                case BOOL: {
                    byte b = buf.get();
                    if (b != 0 && b != 1) {
                        throw fail("invalid bool byte " + b + " in " + reading);
                    }
                    return b == 1;
                }
                case STRING: return readString();
                case ARRAY: return readArray(depth);
                default: throw new AssertionError(type);
            }
        }

        private Object readArray(int depth) throws GgufFormatException {
            if (depth > 2) {
                throw fail("arrays nested too deeply in " + reading);
            }
            GgufValueType et = readValueType();
            long n = buf.getLong();
            checkCount("array length in " + reading, n, et.minBytes());
            int count = (int) n;
            if (et == GgufValueType.STRING || et == GgufValueType.ARRAY) {
                List<Object> list = new ArrayList<>(count);
                for (int i = 0; i < count; i++) {
                    list.add(readValue(et, depth + 1));
                }
                return Collections.unmodifiableList(list);
            }
            if (et == GgufValueType.BOOL) {
                boolean[] out = new boolean[count];
                for (int i = 0; i < count; i++) {
                    out[i] = (Boolean) readValue(et, depth + 1);
                }
                return out;
            }
            if (et.isInteger()) {
                long[] out = new long[count];
                for (int i = 0; i < count; i++) {
                    out[i] = (Long) readValue(et, depth + 1);
                }
                return out;
            }
            double[] out = new double[count];
            for (int i = 0; i < count; i++) {
                out[i] = ((Number) readValue(et, depth + 1)).doubleValue();
            }
            return out;
        }

        private String readString() throws GgufFormatException {
            long len = buf.getLong();
            if (len < 0 || len > MAX_STRING_BYTES || len > buf.remaining()) {
                throw fail("invalid string length " + len + " in " + reading + " (" + buf.remaining() + " bytes left)");
            }
            byte[] bytes = new byte[(int) len];
            buf.get(bytes);
            try {
                return StandardCharsets.UTF_8.newDecoder()
                        .onMalformedInput(CodingErrorAction.REPORT)
                        .decode(java.nio.ByteBuffer.wrap(bytes)).toString();
            } catch (CharacterCodingException e) {
                throw fail("invalid UTF-8 in string in " + reading);
            }
        }

        /** A count is plausible only if that many minimal items fit in the bytes left. */
        private void checkCount(String what, long n, int minBytesEach) throws GgufFormatException {
            if (n < 0 || n > Integer.MAX_VALUE - 8 || n * (long) minBytesEach > buf.remaining()) {
                throw fail(what + " is " + Long.toUnsignedString(n) + ", more than the " + buf.remaining()
                        + " bytes left can hold (corrupt or truncated file)");
            }
        }

        private GgufFormatException fail(String message) {
            return new GgufFormatException(path.getFileName() + ": " + message);
        }
    }

    static long align(long offset, int alignment) {
        return (offset + alignment - 1) / alignment * alignment;
    }
}
