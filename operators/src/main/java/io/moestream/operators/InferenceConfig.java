package io.moestream.operators;

import java.io.Serializable;
import java.util.Objects;

/**
 * Configuration of the {@link InferenceOperator}. The job maps its Flink {@code ConfigOption}s onto
 * this record.
 *
 * @param modelPath          GGUF file to load (once per JVM, shared by the operator instances there)
 * @param batchSize          a batch runs as soon as this many requests are buffered
 * @param maxWaitMillis      ... or when the oldest buffered request has waited this long
 * @param maxTokensCap       largest {@code max_tokens} a prompt may ask for
 * @param documentWaitMillis how long a DOCUMENT prompt waits for its document to complete
 * @param modelName          name written into outputs; {@code null} = the model's {@code general.name}
 * @param kvState            how contexts are kept in keyed state (codec, blocks, pruning, TTL, tenant cap)
 */
public record InferenceConfig(
        String modelPath,
        int batchSize,
        long maxWaitMillis,
        int maxTokensCap,
        long documentWaitMillis,
        String modelName,
        KvStateConfig kvState) implements Serializable {

    public static final int DEFAULT_BATCH_SIZE = 8;
    public static final long DEFAULT_MAX_WAIT_MILLIS = 20;
    public static final int DEFAULT_MAX_TOKENS_CAP = 512;
    public static final long DEFAULT_DOCUMENT_WAIT_MILLIS = 60_000;

    public InferenceConfig {
        Objects.requireNonNull(modelPath, "modelPath");
        Objects.requireNonNull(kvState, "kvState");
        if (batchSize < 1) {
            throw new IllegalArgumentException("batchSize must be >= 1, got " + batchSize);
        }
        if (maxWaitMillis < 0) {
            throw new IllegalArgumentException("maxWaitMillis must be >= 0, got " + maxWaitMillis);
        }
        if (maxTokensCap < 1) {
            throw new IllegalArgumentException("maxTokensCap must be >= 1, got " + maxTokensCap);
        }
        if (documentWaitMillis < 0) {
            throw new IllegalArgumentException("documentWaitMillis must be >= 0, got " + documentWaitMillis);
        }
    }

    /** Default KV state settings. */
    public InferenceConfig(String modelPath, int batchSize, long maxWaitMillis, int maxTokensCap, long documentWaitMillis,
            String modelName) {
        this(modelPath, batchSize, maxWaitMillis, maxTokensCap, documentWaitMillis, modelName, KvStateConfig.defaults());
    }

    /** Model name taken from the model file. */
    public InferenceConfig(String modelPath, int batchSize, long maxWaitMillis, int maxTokensCap, long documentWaitMillis) {
        this(modelPath, batchSize, maxWaitMillis, maxTokensCap, documentWaitMillis, null);
    }

    /** The defaults for everything but the model. */
    public static InferenceConfig defaults(String modelPath) {
        return new InferenceConfig(modelPath, DEFAULT_BATCH_SIZE, DEFAULT_MAX_WAIT_MILLIS, DEFAULT_MAX_TOKENS_CAP,
                DEFAULT_DOCUMENT_WAIT_MILLIS, null, KvStateConfig.defaults());
    }

    public InferenceConfig withBatchSize(int value) {
        return new InferenceConfig(modelPath, value, maxWaitMillis, maxTokensCap, documentWaitMillis, modelName, kvState);
    }

    public InferenceConfig withMaxWaitMillis(long value) {
        return new InferenceConfig(modelPath, batchSize, value, maxTokensCap, documentWaitMillis, modelName, kvState);
    }

    public InferenceConfig withMaxTokensCap(int value) {
        return new InferenceConfig(modelPath, batchSize, maxWaitMillis, value, documentWaitMillis, modelName, kvState);
    }

    public InferenceConfig withDocumentWaitMillis(long value) {
        return new InferenceConfig(modelPath, batchSize, maxWaitMillis, maxTokensCap, value, modelName, kvState);
    }

    public InferenceConfig withModelName(String value) {
        return new InferenceConfig(modelPath, batchSize, maxWaitMillis, maxTokensCap, documentWaitMillis, value, kvState);
    }

    public InferenceConfig withKvState(KvStateConfig value) {
        return new InferenceConfig(modelPath, batchSize, maxWaitMillis, maxTokensCap, documentWaitMillis, modelName, value);
    }
}
