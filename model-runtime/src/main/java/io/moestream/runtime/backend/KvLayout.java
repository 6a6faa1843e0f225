package io.moestream.runtime.backend;

import io.moestream.runtime.kv.KvCodec;

/**
 * Shape and byte format of a paged KV pool. Every physical block holds {@code blockTokens} (B)
 * consecutive positions of one sequence for every layer, as one slab per (layer, KV head), slabs in
 * the order {@code layer * kvHeads + head}, each slab its K section followed by its V section.
 * There are two kinds of blocks, as in the CPU engine's {@link io.moestream.runtime.kv.PagedKvCache}:
 *
 * <ul>
 *   <li><b>sealed</b> blocks, full and compressed with {@link #codec}: F32/F16 sections are
 *       {@code [B][headDim]} elements; INT8/INT4 (KIVI) sections are f16 scales, f16 mins, then the
 *       codes (keys grouped per channel over G tokens, values per token over G channels; see
 *       docs/kv-cache.md). These bytes are exactly the data part of the engine's block record
 *       ({@code PagedKvCache.encodeBlock} without header, presence bits and CRC), so a block moves
 *       between keyed state and a backend by adding or removing that frame
 *       ({@code PagedKvCache.backendBlock}, {@code appendBackendBlocks});</li>
 *   <li><b>open</b> blocks, float32 {@code [B][headDim]} sections: the positions of a block that is
 *       not full yet (KIVI's full-precision residual). Keys are quantized per channel over groups
 *       of tokens, so a block can only be compressed once it is full.</li>
 * </ul>
 *
 * All little-endian. Sections of every codec are a multiple of 2 bytes long (f16 scales stay aligned).
 *
 * @param layers      transformer layers
 * @param kvHeads     key/value heads
 * @param headDim     width of one head
 * @param blockTokens positions per block (B)
 * @param codec       storage of sealed blocks
 */
public record KvLayout(int layers, int kvHeads, int headDim, int blockTokens, KvCodec codec) {

    public KvLayout {
        if (layers <= 0 || kvHeads <= 0 || headDim <= 0 || blockTokens <= 0) {
            throw new IllegalArgumentException("KV layout dimensions must be positive: layers " + layers + ", kvHeads "
                    + kvHeads + ", headDim " + headDim + ", blockTokens " + blockTokens);
        }
        codec.checkFits(blockTokens, headDim);
    }

    /** Floats of K (or V) per position and layer. */
    public int kvDim() {
        return kvHeads * headDim;
    }

    /** Bytes of one K (or V) section of a sealed block. */
    public long sectionBytes() {
        return codec.sectionBytes(blockTokens, headDim);
    }

    /** Bytes of one sealed block. */
    public long blockBytes() {
        return 2L * layers * kvHeads * sectionBytes();
    }

    /** Byte offset, inside a sealed block, of the K section of (layer, kvHead); its V section follows. */
    public long sealedSlabOffset(int layer, int kvHead) {
        return 2L * (layer * (long) kvHeads + kvHead) * sectionBytes();
    }

    /** Floats of one open block. */
    public long openBlockFloats() {
        return 2L * layers * kvHeads * blockTokens * headDim;
    }

    /** Bytes of one open block. */
    public long openBlockBytes() {
        return 4 * openBlockFloats();
    }

    /**
     * Float index, inside the open blocks, of dimension {@code dim} of the K ({@code kv = 0}) or V
     * ({@code kv = 1}) row of (layer, kvHead) at {@code slot = openBlock * B + offset}.
     */
    public long openIndex(int slot, int layer, int kvHead, int kv, int dim) {
        long block = slot / blockTokens;
        int offset = slot % blockTokens;
        return block * openBlockFloats() + ((((long) layer * kvHeads + kvHead) * 2 + kv) * blockTokens + offset) * headDim + dim;
    }
}
