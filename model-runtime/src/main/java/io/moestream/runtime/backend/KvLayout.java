package io.moestream.runtime.backend;

/**
 * Shape of a paged KV pool. A physical block holds {@code blockTokens} consecutive positions of one
 * sequence for every layer, laid out {@code [layer][K|V][token][kvHeads * headDim]} in the codec's
 * element type (little-endian). This is also the byte format of a block in keyed state.
 *
 * @param layers      transformer layers
 * @param kvHeads     key/value heads
 * @param headDim     width of one head
 * @param blockTokens positions per block (B)
 * @param codec       element storage
 */
public record KvLayout(int layers, int kvHeads, int headDim, int blockTokens, KvCodec codec) {

    public KvLayout {
        if (layers <= 0 || kvHeads <= 0 || headDim <= 0 || blockTokens <= 0) {
            throw new IllegalArgumentException("KV layout dimensions must be positive: layers " + layers + ", kvHeads "
                    + kvHeads + ", headDim " + headDim + ", blockTokens " + blockTokens);
        }
        if (!codec.plain()) {
            throw new IllegalArgumentException("KV codec " + codec + " has no block layout yet (plain codecs: F32, F16)");
        }
    }

    /** Floats of K (or V) per position and layer. */
    public int kvDim() {
        return kvHeads * headDim;
    }

    /** Elements of one block. */
    public long blockElements() {
        return 2L * layers * blockTokens * kvDim();
    }

    /** Bytes of one block. */
    public long blockBytes() {
        return blockElements() * codec.elementBytes();
    }

    /**
     * Element index, inside the pool, of dimension {@code dim} of the K ({@code kv = 0}) or V
     * ({@code kv = 1}) row of {@code slot = physicalBlock * blockTokens + offset} in {@code layer}.
     */
    public long elementIndex(int slot, int layer, int kv, int dim) {
        long block = slot / blockTokens;
        int offset = slot % blockTokens;
        return block * blockElements() + ((long) (layer * 2 + kv) * blockTokens + offset) * kvDim() + dim;
    }
}
