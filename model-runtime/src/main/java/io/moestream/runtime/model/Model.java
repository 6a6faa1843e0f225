package io.moestream.runtime.model;

import io.moestream.runtime.gguf.GgufFile;
import io.moestream.runtime.kv.KvCodec;
import io.moestream.runtime.kv.KvShape;
import io.moestream.runtime.kv.PagedKvCache;
import io.moestream.runtime.tokenizer.Tokenizer;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A GGUF model loaded for inference: memory-mapped weights, configuration and tokenizer. Thread-safe
 * for concurrent reads; one instance may be shared by several {@link Engine}s.
 */
public final class Model implements AutoCloseable {

    private final String name;
    private final ModelConfig config;
    private final Weights weights;
    private final Tokenizer tokenizer;
    private final GgufFile gguf;
    /** Computed once: its fingerprint formats and hashes the whole configuration. */
    private final KvShape kvShape;

    private Model(String name, ModelConfig config, Weights weights, Tokenizer tokenizer, GgufFile gguf) {
        this.name = name;
        this.config = config;
        this.weights = weights;
        this.tokenizer = tokenizer;
        this.gguf = gguf;
        this.kvShape = KvShape.of(name, config);
    }

    /** The shape (and fingerprint) of this model's KV caches. */
    public KvShape kvShape() {
        return kvShape;
    }

    /** Maps the file and checks it; a corrupt or unsupported file fails with a message naming what is wrong. */
    public static Model load(Path ggufFile) throws IOException {
        GgufFile f = GgufFile.open(ggufFile);
        ModelConfig config = ModelConfig.from(f);
        Tokenizer tokenizer = Tokenizer.from(f);
        if (tokenizer.vocabSize() != config.vocabSize()) {
            throw new io.moestream.runtime.gguf.GgufFormatException(ggufFile.getFileName() + ": tokenizer has "
                    + tokenizer.vocabSize() + " tokens but the model's vocab_size is " + config.vocabSize());
        }
        Weights weights = Weights.from(f, config);
        String name = f.getString("general.name", ggufFile.getFileName().toString());
        return new Model(name, config, weights, tokenizer, f);
    }

    /** The bundled demo model (trained-moe, Q4_K_M), extracted once per JVM; see {@link DefaultModel}. */
    public static Model loadDefault() throws IOException {
        return load(DefaultModel.path());
    }

    /** {@code general.name}, else the file name. */
    public String name() {
        return name;
    }

    public Tokenizer tokenizer() {
        return tokenizer;
    }

    public ModelConfig config() {
        return config;
    }

    /** The parsed file (metadata and tensors), for tools that inspect it. */
    public GgufFile gguf() {
        return gguf;
    }

    /** Most positions a sequence may hold ({@code context_length}). */
    public int contextLength() {
        return config.contextLength();
    }

    /**
     * This model's weights and tokenizer under another configuration of the same shapes, e.g. a
     * different routing rule; for experiments and tests that show which detail matters.
     */
    Model withConfig(ModelConfig other) {
        return new Model(name, other, weights, tokenizer, gguf);
    }

    Weights weights() {
        return weights;
    }

    /** A new, empty, uncompressed (float32) cache for one sequence: the Engine's exact numerics. */
    public KvCache newCache() {
        return newCache(KvCodec.F32);
    }

    /** A new, empty cache whose full blocks of {@link PagedKvCache#DEFAULT_BLOCK_TOKENS} positions are compressed with {@code codec}. */
    public KvCache newCache(KvCodec codec) {
        return newCache(codec, PagedKvCache.DEFAULT_BLOCK_TOKENS);
    }

    /**
     * A new, empty cache with blocks of {@code blockTokens} positions compressed with {@code codec}.
     *
     * @throws IllegalArgumentException when the codec's group size does not divide the block size or head width
     */
    public KvCache newCache(KvCodec codec, int blockTokens) {
        return new KvCache(new PagedKvCache(kvShape, codec, blockTokens),
                new int[0]);
    }

    /** Reads a cache written by {@link KvCache#toBytes()}; fails clearly if it belongs to another model. */
    public KvCache cacheFromBytes(byte[] bytes) {
        return KvCache.fromBytes(bytes, this);
    }

    /** Mappings are released by the garbage collector once no engine uses this model. */
    @Override
    public void close() {}

    @Override
    public String toString() {
        return "Model[" + name + ", " + config + "]";
    }
}
