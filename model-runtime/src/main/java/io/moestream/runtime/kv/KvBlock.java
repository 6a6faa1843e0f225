package io.moestream.runtime.kv;

/**
 * One block of the paged cache: positions {@code [index * B, index * B + tokens())} of every layer's
 * K and V, one {@link HeadSlab} per (layer, KV head). A block is either the <em>tail</em> (float32,
 * writable, possibly partially filled) or <em>sealed</em> (full, compressed with the cache's codec,
 * immutable except that the slabs of streaming heads and sliding-window layers are dropped once the
 * block leaves their window).
 */
public final class KvBlock {

    final int index;
    final int blockTokens;
    final KvCodec codec;       // codec of the slabs: F32 for the tail
    final HeadSlab[] slabs;    // [layer * kvHeads + head]; null = dropped (streaming head or sliding layer, out of window)
    final boolean sealed;
    /**
     * Per (layer, head) compressed copies of a full, not yet committed tail made mid-step by
     * {@link PagedKvCache#sealLayerBelow} (null = none); the float32 slabs stay the truth until commit.
     */
    HeadSlab[] early;

    KvBlock(int index, int blockTokens, KvCodec codec, HeadSlab[] slabs, boolean sealed) {
        this.index = index;
        this.blockTokens = blockTokens;
        this.codec = codec;
        this.slabs = slabs;
        this.sealed = sealed;
    }

    static KvBlock tail(int index, KvShape shape, int blockTokens) {
        HeadSlab[] s = new HeadSlab[shape.headCount()];
        for (int i = 0; i < s.length; i++) {
            s[i] = new HeadSlab.F32Slab(shape.headDim(), blockTokens, shape.latent());
        }
        return new KvBlock(index, blockTokens, KvCodec.F32, s, false);
    }

    /** Logical block index (its first position is {@code index * blockTokens}). */
    public int index() {
        return index;
    }

    /** First position held. */
    public int firstPosition() {
        return index * blockTokens;
    }

    /** Positions filled. */
    public int tokens() {
        for (HeadSlab s : slabs) {
            if (s != null) {
                return s.tokens();
            }
        }
        return blockTokens; // all heads dropped: only sealed (full) blocks can be compacted
    }

    /** Whether the block is full and compressed (else it is the float32 tail). */
    public boolean sealed() {
        return sealed;
    }

    /** Codec of the stored data ({@link KvCodec#F32} for the tail). */
    public KvCodec codec() {
        return codec;
    }

    /** Whether (layer, KV head)'s data is still held (false once dropped for a streaming head). */
    public boolean holds(int layer, int kvHead, int kvHeads) {
        return slabs[layer * kvHeads + kvHead] != null;
    }

    /** Bytes of K/V data of {@code layer} held ({@code kvHeads} slabs per layer). */
    long layerBytes(int layer, int kvHeads) {
        long n = 0;
        for (int h = 0; h < kvHeads; h++) {
            HeadSlab s = slabs[layer * kvHeads + h];
            n += s == null ? 0 : s.bytes();
        }
        return n;
    }

    /** Bytes of K/V data held (excluding the serialization header). */
    public long dataBytes() {
        long n = 0;
        for (HeadSlab s : slabs) {
            if (s != null) {
                n += s.bytes();
            }
        }
        return n;
    }

    KvBlock sealWith(KvCodec target) {
        HeadSlab[] s = new HeadSlab[slabs.length];
        for (int i = 0; i < s.length; i++) {
            if (early != null && early[i] != null) {
                s[i] = early[i]; // the same codec and data: sealing is deterministic
            } else {
                s[i] = slabs[i] == null ? null : HeadSlab.seal((HeadSlab.F32Slab) slabs[i], target);
            }
        }
        return new KvBlock(index, blockTokens, target, s, true);
    }

    KvBlock copy() {
        HeadSlab[] s = slabs.clone();
        if (!sealed) {
            for (int i = 0; i < s.length; i++) {
                s[i] = ((HeadSlab.F32Slab) s[i]).copy(blockTokens);
            }
        }
        return new KvBlock(index, blockTokens, codec, s, sealed); // sealed slabs are immutable: shared
    }
}
