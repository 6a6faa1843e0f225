package io.moestream.runtime.kv;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.function.IntFunction;

/**
 * The compressed, paged KV cache of one sequence (document or conversation).
 *
 * <p>Positions live in blocks of {@code B} tokens ({@link #blockTokens()}, default 32); block
 * {@code i} holds positions {@code [i*B, (i+1)*B)} of every layer's K and V. Blocks that are not yet
 * full stay in float32 (KIVI's full-precision residual); when a block fills up, {@link #commit}
 * compresses it with the cache's {@link KvCodec} and it never changes again, except that once it is
 * out of every future query's window the slabs of streaming heads ({@link HeadPolicy}) and of
 * sliding-window layers ({@link KvShape.Attention}) are dropped: a sliding layer holds at most its
 * window plus two blocks, however long the sequence. A latent shape ({@link KvShape#latent()})
 * keeps one row per position as key and value.
 *
 * <p>Writing protocol (what the Engine does per position, or per batch of positions):
 * {@link #write} the K/V of positions {@code >= length()} for each layer (attention of layer l at
 * position p may run as soon as layer l of positions {@code <= p} is written), then
 * {@link #commit(int)} the new length once every layer is written.
 *
 * <p>State protocol (Flink operator): {@link #meta()} to a {@code ValueState},
 * {@link #encodeBlock(int)} of each {@link #dirtyBlocks()} to {@code MapState<Integer, byte[]>}, then
 * {@link #markClean()}. Only the previously partial block, new blocks and blocks that just lost slabs
 * to a window are dirty. {@link #restore} rebuilds an identical cache.
 *
 * <p>Not thread-safe; a cache belongs to one sequence at a time.
 */
public final class PagedKvCache {

    public static final int DEFAULT_BLOCK_TOKENS = 32;

    private final KvShape shape;
    private final KvCodec codec;
    private final int blockTokens;
    private HeadPolicy policy;
    private final List<KvBlock> blocks = new ArrayList<>();
    private int length;
    private final BitSet dirty = new BitSet();

    public PagedKvCache(KvShape shape, KvCodec codec, int blockTokens) {
        codec.checkFits(blockTokens, shape.headDim(), shape.latent());
        if (blockTokens < 1 || blockTokens > 0xFFFF) {
            throw new IllegalArgumentException("block size must be in 1..65535, got " + blockTokens);
        }
        this.shape = shape;
        this.codec = codec;
        this.blockTokens = blockTokens;
        this.policy = HeadPolicy.allRetrieval(shape.layers(), shape.kvHeads());
    }

    public PagedKvCache(KvShape shape, KvCodec codec) {
        this(shape, codec, DEFAULT_BLOCK_TOKENS);
    }

    public KvShape shape() {
        return shape;
    }

    public KvCodec codec() {
        return codec;
    }

    public int blockTokens() {
        return blockTokens;
    }

    /** Committed positions. */
    public int length() {
        return length;
    }

    public HeadPolicy policy() {
        return policy;
    }

    /** Blocks allocated (committed blocks, plus any holding written but not yet committed positions). */
    public int blockCount() {
        return blocks.size();
    }

    public KvBlock block(int i) {
        return blocks.get(i);
    }

    /**
     * Stores the key and value ({@code kvDim} floats each, all KV heads) of {@code layer} at
     * {@code pos}. {@code pos} must not be committed yet ({@code pos >= length()}). A latent shape
     * stores the key row only ({@code v} is not read and may be null).
     */
    public void write(int layer, int pos, float[] k, int kOff, float[] v, int vOff) {
        if (pos < length) {
            throw new IllegalArgumentException("position " + pos + " is already committed (length " + length + ")");
        }
        if (layer < 0 || layer >= shape.layers()) {
            throw new IndexOutOfBoundsException("layer " + layer + " of " + shape.layers());
        }
        int bi = pos / blockTokens;
        while (blocks.size() <= bi) {
            blocks.add(KvBlock.tail(blocks.size(), shape, blockTokens));
        }
        KvBlock b = blocks.get(bi);
        int t = pos - bi * blockTokens;
        int hd = shape.headDim();
        for (int h = 0; h < shape.kvHeads(); h++) {
            if (b.early != null) {
                b.early[layer * shape.kvHeads() + h] = null; // (re)written: a compressed copy from an aborted step is stale
            }
            ((HeadSlab.F32Slab) b.slabs[layer * shape.kvHeads() + h]).put(t, k, kOff + h * hd, v, vOff + h * hd);
        }
        dirty.set(bi);
    }

    /**
     * Declares positions {@code < newLength} written for every layer: full blocks are compressed, and
     * blocks that left the window of streaming heads or sliding layers lose those slabs.
     */
    public void commit(int newLength) {
        if (newLength < length || newLength > blocks.size() * blockTokens) {
            throw new IllegalArgumentException("cannot commit length " + newLength + " (length " + length + ", "
                    + blocks.size() * blockTokens + " positions allocated)");
        }
        for (int bi = length / blockTokens; bi < newLength / blockTokens; bi++) {
            KvBlock b = blocks.get(bi);
            if (!b.sealed) {
                blocks.set(bi, b.sealWith(codec));
                dirty.set(bi);
            }
        }
        int old = length;
        length = newLength;
        compact(old);
    }

    /**
     * Compresses, for {@code layer} only, the full blocks before the one holding {@code pos} that are
     * not sealed yet (positions written in the current batch, not committed). A batched step calls this
     * before attending the query at {@code pos}, so that the query sees every earlier block exactly as
     * it would one position at a time (where {@link #commit} has sealed them): batched and
     * one-at-a-time runs stay bit-identical for every codec. {@link #commit} seals the other layers.
     */
    public void sealLayerBelow(int layer, int pos) {
        if (codec == KvCodec.F32) {
            return; // sealing an F32 block does not change its values
        }
        int kvHeads = shape.kvHeads();
        for (int bi = length / blockTokens; bi < pos / blockTokens && bi < blocks.size(); bi++) {
            KvBlock b = blocks.get(bi);
            if (b.sealed) {
                continue;
            }
            for (int h = 0; h < kvHeads; h++) {
                int i = layer * kvHeads + h;
                HeadSlab.F32Slab f = (HeadSlab.F32Slab) b.slabs[i];
                if (f.tokens == blockTokens && (b.early == null || b.early[i] == null)) {
                    if (b.early == null) {
                        b.early = new HeadSlab[b.slabs.length];
                    }
                    b.early[i] = HeadSlab.seal(f, codec);
                }
            }
        }
    }

    /**
     * Sets the head policy (from {@link HeadClassifier}); from now on streaming heads attend only to
     * sink + window, and their data outside it is dropped from sealed blocks.
     */
    public void setPolicy(HeadPolicy p) {
        if (p.layers() != shape.layers() || p.kvHeads() != shape.kvHeads()) {
            throw new IllegalArgumentException("head policy is for " + p.layers() + "x" + p.kvHeads() + " heads, cache has "
                    + shape.layers() + "x" + shape.kvHeads());
        }
        if (!p.equals(policy) && policy.anyStreaming()) {
            throw new IllegalStateException("the head policy is already set (" + policy + "); dropped data cannot come back");
        }
        policy = p;
        compact(0);
    }

    /**
     * Drops the slabs no query at {@code >= length} can see: of streaming heads, and of sliding layers
     * (a query at p sees {@code t > p - window}). What was droppable at {@code oldLength} was dropped
     * then, so only blocks near that edge of the largest window are looked at.
     */
    private void compact(int oldLength) {
        int widest = shape.attention().window();
        if (policy.anyStreaming()) {
            widest = Math.max(widest, policy.window());
        } else if (widest == 0) {
            return;
        }
        int kvHeads = shape.kvHeads();
        for (int bi = Math.max(0, Math.floorDiv(oldLength - widest - blockTokens, blockTokens)); bi < length / blockTokens; bi++) {
            KvBlock b = blocks.get(bi);
            boolean changed = false;
            for (int l = 0; l < shape.layers(); l++) {
                boolean outOfWindow = outOfWindow(l, bi, length);
                for (int h = 0; h < kvHeads; h++) {
                    boolean drop = outOfWindow || policy.isStreaming(l, h) && policy.droppable(bi * blockTokens, blockTokens, length);
                    if (drop && b.slabs[l * kvHeads + h] != null) {
                        b.slabs[l * kvHeads + h] = null;
                        changed = true;
                    }
                }
            }
            if (changed) {
                dirty.set(bi);
            }
        }
    }

    /** Whether layer l slides and block bi lies wholly before the window of every query at {@code >= length}. */
    private boolean outOfWindow(int l, int bi, int length) {
        int w = shape.attention().window(l);
        return w > 0 && bi * blockTokens + blockTokens - 1 <= length - w;
    }

    /**
     * Whether {@link #truncateBlocks}({@code blockCount}) works: no streaming heads, and every slab a
     * query at {@code >= blockCount * B} sees is still held (a sliding layer may have dropped it).
     */
    public boolean canTruncateTo(int blockCount) {
        if (policy.anyStreaming()) {
            return false;
        }
        int newLength = blockCount * blockTokens;
        for (int bi = 0; bi < Math.min(blockCount, blocks.size()); bi++) {
            for (int l = 0; l < shape.layers(); l++) {
                for (int h = 0; h < shape.kvHeads(); h++) {
                    if (!outOfWindow(l, bi, newLength) && !blocks.get(bi).holds(l, h, shape.kvHeads())) {
                        return false;
                    }
                }
            }
        }
        return true;
    }

    /**
     * Keeps the first {@code blockCount} blocks (all committed and full) and drops the rest, so that
     * a sequence can continue from position {@code blockCount * blockTokens()}. Only without streaming
     * heads, and only while the sliding layers still hold the window of that position
     * ({@link #canTruncateTo}): dropped data cannot come back.
     *
     * @throws IllegalStateException when {@link #canTruncateTo} is false
     */
    public void truncateBlocks(int blockCount) {
        if (blockCount < 0 || blockCount * blockTokens > length) {
            throw new IllegalArgumentException("cannot keep " + blockCount + " blocks of " + blockTokens
                    + " positions of a cache of length " + length);
        }
        if (policy.anyStreaming()) {
            throw new IllegalStateException("cannot truncate a cache with streaming heads (" + policy + ")");
        }
        if (!canTruncateTo(blockCount)) {
            throw new IllegalStateException("cannot truncate to " + blockCount * blockTokens + " positions: sliding-window layers"
                    + " (window " + shape.attention().window() + ") have dropped positions that it would see again");
        }
        while (blocks.size() > blockCount) {
            blocks.remove(blocks.size() - 1);
        }
        dirty.clear(blockCount, Math.max(blockCount, dirty.length()));
        length = blockCount * blockTokens;
    }

    // ---------------------------------------------------------------------------------------------
    // state

    public KvCacheMeta meta() {
        return new KvCacheMeta(shape, codec, blockTokens, length, policy);
    }

    /** The metadata bytes ({@link KvStateFormat}); change on every commit. */
    public byte[] encodeMeta() {
        return meta().encode();
    }

    /** The bytes of block {@code i} (only committed positions), independent of every other block. */
    public byte[] encodeBlock(int i) {
        if (i < 0 || i >= meta().blockCount()) {
            throw new IndexOutOfBoundsException("block " + i + " of " + meta().blockCount() + " committed blocks");
        }
        KvBlock b = blocks.get(i);
        if (!b.sealed && b.tokens() > length - i * blockTokens) {
            // a tail holding uncommitted positions: write only the committed ones
            b = truncatedTail(b, length - i * blockTokens);
        }
        return KvStateFormat.encodeBlock(b, shape);
    }

    private KvBlock truncatedTail(KvBlock b, int tokens) {
        HeadSlab[] s = new HeadSlab[b.slabs.length];
        for (int i = 0; i < s.length; i++) {
            HeadSlab.F32Slab f = ((HeadSlab.F32Slab) b.slabs[i]).copy(blockTokens);
            f.tokens = tokens;
            s[i] = f;
        }
        return new KvBlock(b.index, blockTokens, KvCodec.F32, s, false);
    }

    /** Indices of committed blocks changed since the last {@link #markClean()} (or since creation/restore). */
    public int[] dirtyBlocks() {
        return dirty.stream().filter(i -> i < meta().blockCount()).toArray();
    }

    /** Call after the metadata and the {@link #dirtyBlocks()} were saved. */
    public void markClean() {
        int committed = meta().blockCount();
        dirty.clear(0, committed);
        // the partial tail stays in float32 and will change again: it is re-marked on the next write
    }

    /**
     * Rebuilds a cache from its metadata and blocks ({@code blocks.apply(i)} for {@code i in
     * 0..meta.blockCount()-1}).
     *
     * @param expected the shape of the model that will use it: a cache of another model fails
     * @throws KvStateException on corrupted, truncated or mismatching bytes
     */
    public static PagedKvCache restore(KvShape expected, byte[] metaBytes, IntFunction<byte[]> blocks) {
        KvCacheMeta m = KvCacheMeta.decode(metaBytes);
        if (!m.shape().equals(expected)) {
            throw new KvStateException("KV cache is for another model: " + m.shape() + ", this model is " + expected);
        }
        PagedKvCache c = new PagedKvCache(m.shape(), m.codec(), m.blockTokens());
        c.policy = m.policy();
        for (int i = 0; i < m.blockCount(); i++) {
            c.blocks.add(KvStateFormat.decodeBlock(blocks.apply(i), m, i));
        }
        c.length = m.length();
        for (int bi = 0; bi < c.length / c.blockTokens; bi++) {
            for (int l = 0; l < c.shape.layers(); l++) {
                for (int h = 0; h < c.shape.kvHeads(); h++) {
                    if (!c.blocks.get(bi).holds(l, h, c.shape.kvHeads()) && !c.dropped(l, h, bi)) {
                        throw new KvStateException("KV block " + bi + " lacks layer " + l + " head " + h
                                + ", which queries from position " + c.length + " on still see");
                    }
                }
            }
        }
        return c;
    }

    /** A deep copy (sealed slabs are immutable and shared). */
    public PagedKvCache copy() {
        PagedKvCache c = new PagedKvCache(shape, codec, blockTokens);
        c.policy = policy;
        for (KvBlock b : blocks) {
            c.blocks.add(b.copy());
        }
        c.length = length;
        c.dirty.or(dirty);
        return c;
    }

    /** Whether (layer l, head h) of block bi may be absent at this length: out of a window that applies to it. */
    private boolean dropped(int l, int h, int bi) {
        return outOfWindow(l, bi, length) || policy.isStreaming(l, h) && policy.droppable(bi * blockTokens, blockTokens, length);
    }

    // ---------------------------------------------------------------------------------------------
    // blocks of a compute backend (io.moestream.runtime.backend.KvLayout): same codecs, same bytes

    /**
     * Sealed block {@code i} in the backend block format: the K and V sections of every (layer, KV
     * head) in order, i.e. {@link #encodeBlock}'s data without header, presence bits and CRC.
     *
     * @throws IllegalStateException when the block is not sealed or lost heads to pruning
     */
    public byte[] backendBlock(int i) {
        checkBackendShape();
        if (i < 0 || i >= length / blockTokens) {
            throw new IndexOutOfBoundsException("block " + i + " is not sealed (" + length / blockTokens + " sealed blocks)");
        }
        KvBlock b = blocks.get(i);
        for (HeadSlab slab : b.slabs) {
            if (slab == null) {
                throw new IllegalStateException("block " + i + " lost slabs to a window (streaming heads or sliding layers);"
                        + " backends hold whole blocks");
            }
        }
        return KvStateFormat.backendSealed(b, shape);
    }

    /**
     * The partially filled last block as a backend open block (float32, {@code B} positions per slab,
     * unfilled ones zero), or null when the length is a multiple of {@code B}.
     */
    public byte[] backendTail() {
        checkBackendShape();
        if (length % blockTokens == 0) {
            return null;
        }
        return KvStateFormat.backendOpen(blocks.get(length / blockTokens), shape);
    }

    /**
     * Appends positions {@code length()..newLength-1} that a backend computed: each block that is full
     * at {@code newLength} and not sealed here yet comes from {@code sealed.apply(i)} (backend block
     * format, this cache's codec), and when {@code newLength} is not a multiple of {@code B} the new
     * tail comes from the first positions of {@code tail} (backend open block). The blocks from the old
     * tail on become dirty, as if the positions had been written here.
     *
     * @throws IllegalStateException when positions are written but not committed, or heads stream
     * @throws KvStateException      when a block has the wrong size
     */
    public void appendBackendBlocks(int newLength, IntFunction<byte[]> sealed, byte[] tail) {
        if (newLength < length) {
            throw new IllegalArgumentException("cannot shrink the cache from " + length + " to " + newLength);
        }
        if (blocks.size() != (length + blockTokens - 1) / blockTokens) {
            throw new IllegalStateException("the cache has written but uncommitted positions");
        }
        if (policy.anyStreaming()) {
            throw new IllegalStateException("a cache with streaming heads (" + policy + ") cannot take backend blocks");
        }
        checkBackendShape();
        int first = length / blockTokens;
        int full = newLength / blockTokens;
        for (int i = first; i < full; i++) {
            KvBlock b = KvStateFormat.fromBackendSealed(sealed.apply(i), shape, codec, blockTokens, i);
            set(i, b);
        }
        if (newLength % blockTokens != 0 && newLength > length) {
            set(full, KvStateFormat.fromBackendOpen(tail, shape, blockTokens, full, newLength % blockTokens));
        }
        int old = length;
        length = newLength;
        compact(old);
    }

    /**
     * Whether a compute backend can hold this cache: its blocks are in the backend block format (K and
     * V sections, not a latent row) and whole (no streaming heads, no sliding-window layers).
     */
    public boolean backendCompatible() {
        return !shape.latent() && shape.attention().window() == 0 && !policy.anyStreaming();
    }

    private void checkBackendShape() {
        if (shape.latent()) {
            throw new IllegalStateException("an MLA latent cache (one row per position as key and value) has no backend block format");
        }
    }

    private void set(int i, KvBlock b) {
        if (i < blocks.size()) {
            blocks.set(i, b);
        } else {
            blocks.add(b);
        }
        dirty.set(i);
    }

    // ---------------------------------------------------------------------------------------------
    // sizes and inspection

    /** Serialized bytes of the committed state: metadata plus every block (headers and checksums included). */
    public long stateBytes() {
        long n = encodeMeta().length;
        int count = meta().blockCount();
        for (int i = 0; i < count; i++) {
            KvBlock b = blocks.get(i);
            boolean partialTail = !b.sealed && b.tokens() > length - i * blockTokens;
            // sizes are computed, not encoded: this runs after every stored turn, over every block
            n += partialTail ? encodeBlock(i).length : KvStateFormat.encodedSize(b, shape);
        }
        return n;
    }

    /** K/V data bytes of {@code layer} held (no headers), all blocks. */
    public long layerDataBytes(int layer) {
        long n = 0;
        for (KvBlock b : blocks) {
            n += b.layerBytes(layer, shape.kvHeads());
        }
        return n;
    }

    /** K/V data bytes held (no headers), all blocks. */
    public long dataBytes() {
        long n = 0;
        for (KvBlock b : blocks) {
            n += b.dataBytes();
        }
        return n;
    }

    /**
     * Dequantized keys and values of (layer, kvHead) for positions {@code 0..length()-1},
     * {@code [pos][headDim]}; positions whose data was dropped read as NaN. For tests and evaluation
     * (the attention never makes this copy).
     */
    public void dequantize(int layer, int kvHead, float[] keys, float[] values) {
        int hd = shape.headDim();
        for (int bi = 0; bi * blockTokens < length; bi++) {
            KvBlock b = blocks.get(bi);
            HeadSlab s = b.slabs[layer * shape.kvHeads() + kvHead];
            int first = bi * blockTokens;
            int n = Math.min(blockTokens, length - first);
            if (s == null) {
                java.util.Arrays.fill(keys, first * hd, (first + n) * hd, Float.NaN);
                java.util.Arrays.fill(values, first * hd, (first + n) * hd, Float.NaN);
            } else {
                float[] tk = new float[s.tokens() * hd];
                float[] tv = new float[s.tokens() * hd];
                s.dequantize(tk, 0, tv, 0);
                System.arraycopy(tk, 0, keys, first * hd, n * hd);
                System.arraycopy(tv, 0, values, first * hd, n * hd);
            }
        }
    }

    HeadSlab slab(int block, int layer, int kvHead) {
        KvBlock b = blocks.get(block);
        int i = layer * shape.kvHeads() + kvHead;
        return b.early != null && b.early[i] != null ? b.early[i] : b.slabs[i];
    }

    @Override
    public String toString() {
        return "PagedKvCache[" + codec + ", B=" + blockTokens + ", length " + length + ", " + blocks.size() + " blocks, " + policy + "]";
    }
}
