package io.moestream.runtime.model;

import io.moestream.runtime.kv.HeadClassifier;
import io.moestream.runtime.kv.HeadPolicy;
import io.moestream.runtime.kv.KvCacheMeta;
import io.moestream.runtime.kv.KvCodec;
import io.moestream.runtime.kv.KvStateException;
import io.moestream.runtime.kv.PagedKvCache;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.function.IntFunction;

/**
 * The KV cache of one sequence as the {@link Engine} uses it: a {@link PagedKvCache} (blocks of
 * {@code B} positions, full blocks compressed with the cache's {@link KvCodec}, attention reading
 * them in place) plus the token ids the positions came from. {@link Model#newCache()} is float32
 * (exact: the Engine's numerics of an uncompressed cache); {@link Model#newCache(KvCodec)} picks a codec.
 *
 * <p>State: the Flink operator keeps {@link #paged()}'s metadata and dirty blocks as keyed state
 * ({@link PagedKvCache#encodeMeta()}, {@link PagedKvCache#dirtyBlocks()}, {@link PagedKvCache#encodeBlock(int)})
 * and the token ids next to them, and rebuilds a cache with {@link #restore}. {@link #toBytes()} is the
 * whole cache in one array (tools, tests, a retry's snapshot).
 *
 * <p>Whole-cache byte format (big-endian), version 2: int magic {@code "MSKV"}, int version 2,
 * int length, {@code length} ints of token ids, int metaLength, the {@link PagedKvCache#encodeMeta()}
 * bytes, then per block {@code 0..blockCount-1}: int length, {@link PagedKvCache#encodeBlock(int)}
 * bytes. Version 1 (uncompressed floats, before the paged cache) is still read, as an F32 cache.
 *
 * <p>Not thread-safe; a cache belongs to one sequence at a time.
 */
public final class KvCache {

    static final int MAGIC = 0x4D534B56; // "MSKV"
    static final int VERSION = 2;
    static final int V1_HEADER_BYTES = 5 * Integer.BYTES;

    private final PagedKvCache paged;
    private int[] tokens;
    private int length;
    private HeadClassifier classifier;

    KvCache(PagedKvCache paged, int[] tokens) {
        if (tokens.length != paged.length()) {
            throw new IllegalArgumentException(tokens.length + " token ids for a KV cache of " + paged.length() + " positions");
        }
        this.paged = paged;
        this.tokens = Arrays.copyOf(tokens, Math.max(16, tokens.length));
        this.length = tokens.length;
    }

    /**
     * Rebuilds a cache from its state: the metadata bytes, the token ids and {@code blocks.apply(i)} for
     * every block {@code i} of the metadata.
     *
     * @throws KvStateException when the bytes are corrupted, for another model, or the ids do not match
     */
    public static KvCache restore(Model model, int[] tokenIds, byte[] metaBytes, IntFunction<byte[]> blocks) {
        PagedKvCache p = PagedKvCache.restore(model.kvShape(), metaBytes, blocks);
        if (tokenIds.length != p.length()) {
            throw new KvStateException("KV cache holds " + p.length() + " positions but " + tokenIds.length
                    + " token ids were stored with it");
        }
        return new KvCache(p, tokenIds);
    }

    /** The paged, compressed store (for the state layer, metrics and evaluation). */
    public PagedKvCache paged() {
        return paged;
    }

    /** Number of positions held. */
    public int length() {
        return length;
    }

    /** The token ids of positions {@code 0..length()-1}. */
    public int[] tokens() {
        return Arrays.copyOf(tokens, length);
    }

    /** Layers held. */
    public int layers() {
        return paged.shape().layers();
    }

    /** Key (and value) floats per position and layer. */
    public int kvDim() {
        return paged.shape().kvDim();
    }

    public KvCodec codec() {
        return paged.codec();
    }

    public int blockTokens() {
        return paged.blockTokens();
    }

    /** The head policy (all retrieval unless {@link #applyHeadClassification} set one). */
    public HeadPolicy headPolicy() {
        return paged.policy();
    }

    /**
     * Observes the attention of the following forward passes on this cache (a document's prefill) to
     * classify heads; the Engine reports this cache's queries, and only this cache's, to it.
     */
    public void startHeadClassification(int sink, int window, ModelConfig config) {
        classifier = HeadClassifier.of(config, sink, window);
    }

    /** The classifier started by {@link #startHeadClassification}, or null. */
    public HeadClassifier headClassifier() {
        return classifier;
    }

    /**
     * Ends the observation and sets the policy {@link HeadClassifier#classify} gives (no head streams
     * when none was observed long enough); returns it.
     */
    public HeadPolicy applyHeadClassification(double maxStreamingFraction, double maxOutsideMass) {
        if (classifier == null) {
            throw new IllegalStateException("no head classification was started on this cache");
        }
        HeadPolicy p = classifier.classify(maxStreamingFraction, maxOutsideMass);
        classifier = null;
        paged.setPolicy(p);
        return p;
    }

    /** An independent copy (a DOCUMENT prompt runs on a copy, leaving the document's cache unchanged); sealed blocks are shared. */
    public KvCache copy() {
        return new KvCache(paged.copy(), tokens());
    }

    /** Serialized state bytes: the paged cache's metadata and blocks plus 4 bytes per token id. */
    public long sizeBytes() {
        return paged.stateBytes() + 4L * length;
    }

    /** The whole cache in one array (format version 2, see the class comment); {@link Model#cacheFromBytes} reads it. */
    public byte[] toBytes() {
        byte[] meta = paged.encodeMeta();
        int blocks = paged.meta().blockCount();
        byte[][] bs = new byte[blocks][];
        long size = 4L * 4 + 4L * length + meta.length;
        for (int i = 0; i < blocks; i++) {
            bs[i] = paged.encodeBlock(i);
            size += 4 + bs[i].length;
        }
        if (size > Integer.MAX_VALUE - 8) {
            throw new IllegalStateException("KV cache of " + size + " bytes is too large to serialize into one array");
        }
        ByteBuffer b = ByteBuffer.allocate((int) size);
        b.putInt(MAGIC).putInt(VERSION).putInt(length);
        for (int i = 0; i < length; i++) {
            b.putInt(tokens[i]);
        }
        b.putInt(meta.length).put(meta);
        for (byte[] block : bs) {
            b.putInt(block.length).put(block);
        }
        return b.array();
    }

    /** Reads {@link #toBytes()} output (or a version 1 array); fails naming the mismatch. */
    static KvCache fromBytes(byte[] bytes, Model model) {
        ModelConfig c = model.config();
        if (bytes.length < 3 * Integer.BYTES) {
            throw new IllegalArgumentException("KV cache bytes too short (" + bytes.length + " bytes)");
        }
        ByteBuffer b = ByteBuffer.wrap(bytes);
        int magic = b.getInt();
        if (magic != MAGIC) {
            throw new IllegalArgumentException(String.format("not a KV cache (magic 0x%08x, expected 0x%08x)", magic, MAGIC));
        }
        int version = b.getInt();
        if (version == 1) {
            return fromV1(b, bytes.length, model);
        }
        if (version != VERSION) {
            throw new IllegalArgumentException("unsupported KV cache version " + version + " (this runtime reads 1.." + VERSION + ")");
        }
        try {
            int n = b.getInt();
            if (n < 0 || n > c.contextLength()) {
                throw new IllegalArgumentException("KV cache length " + n + " is outside 0.." + c.contextLength() + " (context length)");
            }
            int[] ids = new int[n];
            for (int i = 0; i < n; i++) {
                ids[i] = b.getInt();
            }
            byte[] meta = new byte[b.getInt()];
            b.get(meta);
            int blocks = KvCacheMeta.decode(meta).blockCount();
            byte[][] bs = new byte[blocks][];
            for (int i = 0; i < blocks; i++) {
                bs[i] = new byte[b.getInt()];
                b.get(bs[i]);
            }
            if (b.hasRemaining()) {
                throw new IllegalArgumentException("KV cache bytes have " + b.remaining() + " trailing bytes");
            }
            return restore(model, ids, meta, i -> bs[i]);
        } catch (java.nio.BufferUnderflowException | NegativeArraySizeException e) {
            throw new IllegalArgumentException("KV cache bytes are truncated (" + bytes.length + " bytes)", e);
        } catch (KvStateException e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        }
    }

    /** Version 1: int layers, int kvDim, int length, ids, then per layer length*kvDim floats of K and of V. */
    private static KvCache fromV1(ByteBuffer b, int size, Model model) {
        ModelConfig c = model.config();
        int layers = b.getInt();
        int kvDim = b.getInt();
        int n = b.getInt();
        if (layers != c.layers() || kvDim != c.kvDim()) {
            throw new IllegalArgumentException("KV cache is for another model shape: " + layers + " layers x kvDim " + kvDim
                    + ", this model has " + c.layers() + " x " + c.kvDim());
        }
        if (n < 0 || n > c.contextLength()) {
            throw new IllegalArgumentException("KV cache length " + n + " is outside 0.." + c.contextLength() + " (context length)");
        }
        long expected = V1_HEADER_BYTES + (long) n * Integer.BYTES + 2L * layers * n * kvDim * Float.BYTES;
        if (size != expected) {
            throw new IllegalArgumentException("KV cache bytes have the wrong size: " + size + ", expected " + expected
                    + " for " + n + " positions");
        }
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = b.getInt();
        }
        PagedKvCache p = new PagedKvCache(model.kvShape(), KvCodec.F32);
        float[] k = new float[n * kvDim];
        float[] v = new float[n * kvDim];
        for (int l = 0; l < layers; l++) {
            b.asFloatBuffer().get(k);
            b.position(b.position() + k.length * Float.BYTES);
            b.asFloatBuffer().get(v);
            b.position(b.position() + v.length * Float.BYTES);
            for (int pos = 0; pos < n; pos++) {
                p.write(l, pos, k, pos * kvDim, v, pos * kvDim);
            }
        }
        if (n > 0) {
            p.commit(n);
        }
        return new KvCache(p, ids);
    }

    /**
     * Appends {@code newTokens} whose keys and values a compute backend computed and holds in its
     * paged pool (the GPU runner writes them back before the operator stores the context): the
     * blocks they fill, in the backend block format, and the new partial tail block
     * ({@link PagedKvCache#appendBackendBlocks}).
     */
    public void appendFromBackend(int[] newTokens, IntFunction<byte[]> sealedBlocks, byte[] tail) {
        paged.appendBackendBlocks(length + newTokens.length, sealedBlocks, tail);
        int n = length + newTokens.length;
        if (n > tokens.length) {
            tokens = Arrays.copyOf(tokens, Math.max(n, tokens.length * 2));
        }
        System.arraycopy(newTokens, 0, tokens, length, newTokens.length);
        length = n;
    }

    /**
     * Whether {@link #truncate}({@code keep}) works: no streaming heads, and the sliding-window layers
     * still hold what a continuation from there sees ({@link PagedKvCache#canTruncateTo}).
     */
    public boolean truncatable(int keep) {
        return keep >= 0 && keep <= length && paged.canTruncateTo(keep / paged.blockTokens());
    }

    /**
     * Drops positions so that the cache keeps at most the first {@code keep} (rounded down to a block
     * boundary, as blocks are stored whole and compressed). Returns the positions kept: the caller
     * continues with its tokens from there.
     *
     * @throws IllegalStateException when {@link #truncatable} is false
     */
    public int truncate(int keep) {
        if (keep < 0 || keep > length) {
            throw new IllegalArgumentException("cannot keep " + keep + " of " + length + " positions");
        }
        int blocks = keep / paged.blockTokens();
        paged.truncateBlocks(blocks);
        length = blocks * paged.blockTokens();
        classifier = null;
        return length;
    }

    /** Records that positions {@code length()..} now hold {@code newTokens}' keys and values (all layers written). */
    void commit(int[] newTokens) {
        int n = length + newTokens.length;
        if (n > tokens.length) {
            tokens = Arrays.copyOf(tokens, Math.max(n, tokens.length * 2));
        }
        System.arraycopy(newTokens, 0, tokens, length, newTokens.length);
        paged.commit(n);
        length = n;
    }

    @Override
    public String toString() {
        return "KvCache[" + length + " tokens, " + paged + "]";
    }
}
