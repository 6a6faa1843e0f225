package io.moestream.runtime.model;

import java.nio.ByteBuffer;
import java.util.Arrays;

/**
 * The keys and values of one sequence, every layer, for positions {@code 0..length()-1}, plus the
 * token ids they came from. Uncompressed float for now; serialized to bytes so it can live in Flink
 * keyed state.
 *
 * <p>Layout: per layer one float array for K and one for V, {@code [pos][kvDim]} row-major, grown by
 * doubling. Not thread-safe; a cache belongs to one sequence at a time.
 *
 * <p>Byte format (big-endian), version 1: int magic {@code "MSKV"}, int version, int layers,
 * int kvDim, int length, {@code length} ints of token ids, then for each layer {@code length*kvDim}
 * floats of K followed by as many of V.
 */
public final class KvCache {

    static final int MAGIC = 0x4D534B56; // "MSKV"
    static final int VERSION = 1;
    static final int HEADER_BYTES = 5 * Integer.BYTES;

    private final int layers;
    private final int kvDim;
    private float[][] keys;   // (layer, capacity * kvDim)
    private float[][] values; // (layer, capacity * kvDim)
    private int[] tokens;
    private int length;

    KvCache(int layers, int kvDim, int initialCapacity) {
        this.layers = layers;
        this.kvDim = kvDim;
        int cap = Math.max(1, initialCapacity);
        this.keys = new float[layers][cap * kvDim];
        this.values = new float[layers][cap * kvDim];
        this.tokens = new int[cap];
    }

    /** Number of positions held. */
    public int length() {
        return length;
    }

    /** The token ids of positions {@code 0..length()-1}. */
    public int[] tokens() {
        return Arrays.copyOf(tokens, length);
    }

    /** Layers held (shape check for {@link Model#cacheFromBytes}). */
    public int layers() {
        return layers;
    }

    /** Key (and value) floats per position and layer. */
    public int kvDim() {
        return kvDim;
    }

    /** An independent deep copy (a DOCUMENT prompt runs on a copy, leaving the document's cache unchanged). */
    public KvCache copy() {
        KvCache c = new KvCache(layers, kvDim, Math.max(1, length));
        for (int l = 0; l < layers; l++) {
            System.arraycopy(keys[l], 0, c.keys[l], 0, length * kvDim);
            System.arraycopy(values[l], 0, c.values[l], 0, length * kvDim);
        }
        System.arraycopy(tokens, 0, c.tokens, 0, length);
        c.length = length;
        return c;
    }

    /** Bytes this cache takes in serialized form. */
    public long sizeBytes() {
        return HEADER_BYTES + (long) length * Integer.BYTES + 2L * layers * length * kvDim * Float.BYTES;
    }

    /** Serialized form, versioned; {@link Model#cacheFromBytes(byte[])} reads it back. */
    public byte[] toBytes() {
        long size = sizeBytes();
        if (size > Integer.MAX_VALUE - 8) {
            throw new IllegalStateException("KV cache of " + size + " bytes is too large to serialize into one array");
        }
        ByteBuffer b = ByteBuffer.allocate((int) size);
        b.putInt(MAGIC).putInt(VERSION).putInt(layers).putInt(kvDim).putInt(length);
        for (int i = 0; i < length; i++) {
            b.putInt(tokens[i]);
        }
        for (int l = 0; l < layers; l++) {
            b.asFloatBuffer().put(keys[l], 0, length * kvDim);
            b.position(b.position() + length * kvDim * Float.BYTES);
            b.asFloatBuffer().put(values[l], 0, length * kvDim);
            b.position(b.position() + length * kvDim * Float.BYTES);
        }
        return b.array();
    }

    /** Reads {@link #toBytes()} output; fails naming the mismatch when it is not for this shape. */
    static KvCache fromBytes(byte[] bytes, int layers, int kvDim, int maxLength) {
        if (bytes.length < HEADER_BYTES) {
            throw new IllegalArgumentException("KV cache bytes too short (" + bytes.length + " bytes, header needs " + HEADER_BYTES + ")");
        }
        ByteBuffer b = ByteBuffer.wrap(bytes);
        int magic = b.getInt();
        if (magic != MAGIC) {
            throw new IllegalArgumentException(String.format("not a KV cache (magic 0x%08x, expected 0x%08x)", magic, MAGIC));
        }
        int version = b.getInt();
        if (version != VERSION) {
            throw new IllegalArgumentException("unsupported KV cache version " + version + " (this runtime reads " + VERSION + ")");
        }
        int l = b.getInt();
        int d = b.getInt();
        int n = b.getInt();
        if (l != layers || d != kvDim) {
            throw new IllegalArgumentException("KV cache is for another model shape: " + l + " layers x kvDim " + d
                    + ", this model has " + layers + " x " + kvDim);
        }
        if (n < 0 || n > maxLength) {
            throw new IllegalArgumentException("KV cache length " + n + " is outside 0.." + maxLength + " (context length)");
        }
        KvCache c = new KvCache(layers, kvDim, n);
        if (bytes.length != c.sizeBytesFor(n)) {
            throw new IllegalArgumentException("KV cache bytes have the wrong size: " + bytes.length + ", expected "
                    + c.sizeBytesFor(n) + " for " + n + " positions");
        }
        for (int i = 0; i < n; i++) {
            c.tokens[i] = b.getInt();
        }
        for (int layer = 0; layer < layers; layer++) {
            b.asFloatBuffer().get(c.keys[layer], 0, n * kvDim);
            b.position(b.position() + n * kvDim * Float.BYTES);
            b.asFloatBuffer().get(c.values[layer], 0, n * kvDim);
            b.position(b.position() + n * kvDim * Float.BYTES);
        }
        c.length = n;
        return c;
    }

    private long sizeBytesFor(int n) {
        return HEADER_BYTES + (long) n * Integer.BYTES + 2L * layers * n * kvDim * Float.BYTES;
    }

    /** Makes room for position {@code pos}. */
    void ensureCapacity(int positions) {
        if (positions <= tokens.length) {
            return;
        }
        int cap = Math.max(positions, tokens.length * 2);
        for (int l = 0; l < layers; l++) {
            keys[l] = Arrays.copyOf(keys[l], cap * kvDim);
            values[l] = Arrays.copyOf(values[l], cap * kvDim);
        }
        tokens = Arrays.copyOf(tokens, cap);
    }

    float[] keys(int layer) {
        return keys[layer];
    }

    float[] values(int layer) {
        return values[layer];
    }

    /** Records that position {@code length()} now holds {@code token}'s keys and values. */
    void commit(int token) {
        tokens[length++] = token;
    }
}
