package io.moestream.runtime.kv;

/**
 * The small, separately serialized part of a {@link PagedKvCache} (Flink: {@code ValueState}); the
 * blocks go one per map entry. See {@link KvStateFormat} for the bytes.
 *
 * @param shape       model shape and fingerprint
 * @param codec       codec of sealed blocks
 * @param blockTokens positions per block (B)
 * @param length      positions held
 * @param policy      head policy (all-retrieval when no pruning)
 */
public record KvCacheMeta(KvShape shape, KvCodec codec, int blockTokens, int length, HeadPolicy policy) {

    public KvCacheMeta {
        if (blockTokens < 1 || blockTokens > 0xFFFF) {
            throw new IllegalArgumentException("block size must be in 1..65535, got " + blockTokens);
        }
        if (length < 0) {
            throw new IllegalArgumentException("length must be >= 0, got " + length);
        }
        if (policy.layers() != shape.layers() || policy.kvHeads() != shape.kvHeads()) {
            throw new IllegalArgumentException("head policy is for " + policy.layers() + " x " + policy.kvHeads()
                    + " heads, the shape has " + shape.layers() + " x " + shape.kvHeads());
        }
        codec.checkFits(blockTokens, shape.headDim(), shape.latent());
    }

    /** Number of blocks ({@code ceil(length / B)}); the map keys are {@code 0..blockCount()-1}. */
    public int blockCount() {
        return (length + blockTokens - 1) / blockTokens;
    }

    public byte[] encode() {
        return KvStateFormat.encodeMeta(this);
    }

    /** @throws KvStateException on bad magic, unknown version, checksum mismatch or truncation */
    public static KvCacheMeta decode(byte[] bytes) {
        return KvStateFormat.decodeMeta(bytes);
    }
}
