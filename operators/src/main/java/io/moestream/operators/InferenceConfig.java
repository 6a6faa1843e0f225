package io.moestream.operators;

import io.moestream.runtime.sched.StepPlanner;
import java.io.Serializable;
import java.util.Objects;

/**
 * Configuration of the {@link InferenceOperator}. The job maps its Flink {@code ConfigOption}s onto
 * this record; tests start from {@link #defaults} and change single fields with the {@code with...}
 * methods.
 *
 * @param modelPath             GGUF file to load (once per JVM, shared by the operator instances there)
 * @param maxSequences          most sequences (requests) running in one step
 * @param tokenBudget           most tokens (decode tokens plus prefill chunks) computed in one step; at
 *                              least {@code maxSequences}, so every running sequence can decode each step,
 *                              and at least 2 (a prompt chunk is never one token alone)
 * @param attentionBudget       most attention work in one step: the sum over its tokens of the positions each
 *                              attends to (a prefill chunk of n tokens after p cached positions counts
 *                              n·(p+n), a decode token p+1); a chunk deep in a long context is cut smaller to
 *                              stay within it, never below 2 tokens (≥ 1)
 * @param maxQueued             back-pressure bound: most requests queued or running per operator instance;
 *                              at the bound, input processing runs steps until there is room
 * @param tenantShare           while other tenants wait, one tenant holds at most this share of the step's
 *                              sequences and prefill tokens (0 &lt; share &le; 1; 1 = no limit)
 * @param maxTokensCap          largest {@code max_tokens} a prompt may ask for
 * @param documentWaitMillis    how long a DOCUMENT prompt waits for its document to complete
 * @param maxDocumentTokens     largest document, in tokens; 0 = the model's context window
 * @param duplicateWindowMillis a request id seen again within this time gets DUPLICATE_REQUEST; 0 = off
 * @param modelName             name written into outputs; {@code null} = the model's {@code general.name}
 * @param kvState               how contexts are kept in keyed state (codec, blocks, pruning, TTL, tenant cap)
 * @param backend               where steps run: {@code auto} (a GPU backend when one can run here, else the
 *                              CPU engine), {@code cpu} or {@code cuda}; see {@link RunnerSelection}
 * @param chatTemplate          Jinja2 source of the chat template prompts with {@code messages} are rendered
 *                              with; {@code null} = the model's {@code tokenizer.chat_template}
 */
public record InferenceConfig(
        String modelPath,
        int maxSequences,
        int tokenBudget,
        long attentionBudget,
        int maxQueued,
        double tenantShare,
        int maxTokensCap,
        long documentWaitMillis,
        int maxDocumentTokens,
        long duplicateWindowMillis,
        String modelName,
        KvStateConfig kvState,
        String backend,
        String chatTemplate) implements Serializable {

    /**
     * {@link #modelPath} of the small trained MoE bundled in the runtime jar; each TaskManager
     * extracts it itself, so the job needs no model file on the cluster.
     */
    public static final String BUNDLED_MODEL = "bundled:trained-moe-q4_k_m";

    public static final int DEFAULT_MAX_SEQUENCES = 8;
    public static final int DEFAULT_TOKEN_BUDGET = 256;
    /**
     * 2^23: a full 256-token chunk up to 32,512 cached positions. A smaller budget shortens the steps of
     * a long ingestion at the cost of more, smaller steps (2^20 halved the 32K ingest rate, docs/benchmarks.md).
     */
    public static final long DEFAULT_ATTENTION_BUDGET = 1L << 23;
    public static final int DEFAULT_MAX_QUEUED = 256;
    public static final double DEFAULT_TENANT_SHARE = 0.5;
    public static final int DEFAULT_MAX_TOKENS_CAP = 512;
    public static final long DEFAULT_DOCUMENT_WAIT_MILLIS = 60_000;
    public static final int DEFAULT_MAX_DOCUMENT_TOKENS = 0;
    public static final long DEFAULT_DUPLICATE_WINDOW_MILLIS = 600_000;
    public static final String DEFAULT_BACKEND = "auto";

    public InferenceConfig {
        Objects.requireNonNull(modelPath, "modelPath");
        Objects.requireNonNull(kvState, "kvState");
        if (backend == null || backend.isBlank()) {
            throw new IllegalArgumentException("backend must be auto, cpu or cuda, got '" + backend + "'");
        }
        if (maxSequences < 1) {
            throw new IllegalArgumentException("maxSequences must be >= 1, got " + maxSequences);
        }
        if (tokenBudget < maxSequences) {
            throw new IllegalArgumentException("tokenBudget " + tokenBudget + " must be >= maxSequences "
                    + maxSequences + " so that every running sequence can decode each step");
        }
        if (tokenBudget < StepPlanner.LEAST_TOKEN_BUDGET) {
            throw new IllegalArgumentException("tokenBudget must be >= " + StepPlanner.LEAST_TOKEN_BUDGET
                    + " (a cut prompt chunk is a multiple of " + StepPlanner.ALIGN + " tokens leaving at least two), got "
                    + tokenBudget);
        }
        if (attentionBudget < 1) {
            throw new IllegalArgumentException("attentionBudget must be >= 1, got " + attentionBudget);
        }
        if (maxQueued < 1) {
            throw new IllegalArgumentException("maxQueued must be >= 1, got " + maxQueued);
        }
        if (!(tenantShare > 0 && tenantShare <= 1)) {
            throw new IllegalArgumentException("tenantShare must be in (0, 1], got " + tenantShare);
        }
        if (maxTokensCap < 1) {
            throw new IllegalArgumentException("maxTokensCap must be >= 1, got " + maxTokensCap);
        }
        if (documentWaitMillis < 0) {
            throw new IllegalArgumentException("documentWaitMillis must be >= 0, got " + documentWaitMillis);
        }
        if (maxDocumentTokens < 0) {
            throw new IllegalArgumentException("maxDocumentTokens must be >= 0 (0 = context window), got " + maxDocumentTokens);
        }
        if (duplicateWindowMillis < 0) {
            throw new IllegalArgumentException("duplicateWindowMillis must be >= 0 (0 = off), got " + duplicateWindowMillis);
        }
    }

    /** The defaults for everything but the model. */
    public static InferenceConfig defaults(String modelPath) {
        return new InferenceConfig(modelPath, DEFAULT_MAX_SEQUENCES, DEFAULT_TOKEN_BUDGET, DEFAULT_ATTENTION_BUDGET, DEFAULT_MAX_QUEUED,
                DEFAULT_TENANT_SHARE, DEFAULT_MAX_TOKENS_CAP, DEFAULT_DOCUMENT_WAIT_MILLIS, DEFAULT_MAX_DOCUMENT_TOKENS,
                DEFAULT_DUPLICATE_WINDOW_MILLIS, null, KvStateConfig.defaults(), DEFAULT_BACKEND, null);
    }

    /** Sets {@code maxSequences}, raising {@code tokenBudget} to it when it is smaller. */
    public InferenceConfig withMaxSequences(int value) {
        return new InferenceConfig(modelPath, value, Math.max(tokenBudget, Math.max(2, value)), attentionBudget, maxQueued, tenantShare, maxTokensCap,
                documentWaitMillis, maxDocumentTokens, duplicateWindowMillis, modelName, kvState, backend, chatTemplate);
    }

    public InferenceConfig withTokenBudget(int value) {
        return new InferenceConfig(modelPath, maxSequences, value, attentionBudget, maxQueued, tenantShare, maxTokensCap,
                documentWaitMillis, maxDocumentTokens, duplicateWindowMillis, modelName, kvState, backend, chatTemplate);
    }

    public InferenceConfig withAttentionBudget(long value) {
        return new InferenceConfig(modelPath, maxSequences, tokenBudget, value, maxQueued, tenantShare, maxTokensCap,
                documentWaitMillis, maxDocumentTokens, duplicateWindowMillis, modelName, kvState, backend, chatTemplate);
    }

    public InferenceConfig withMaxQueued(int value) {
        return new InferenceConfig(modelPath, maxSequences, tokenBudget, attentionBudget, value, tenantShare, maxTokensCap,
                documentWaitMillis, maxDocumentTokens, duplicateWindowMillis, modelName, kvState, backend, chatTemplate);
    }

    public InferenceConfig withTenantShare(double value) {
        return new InferenceConfig(modelPath, maxSequences, tokenBudget, attentionBudget, maxQueued, value, maxTokensCap,
                documentWaitMillis, maxDocumentTokens, duplicateWindowMillis, modelName, kvState, backend, chatTemplate);
    }

    public InferenceConfig withMaxTokensCap(int value) {
        return new InferenceConfig(modelPath, maxSequences, tokenBudget, attentionBudget, maxQueued, tenantShare, value,
                documentWaitMillis, maxDocumentTokens, duplicateWindowMillis, modelName, kvState, backend, chatTemplate);
    }

    public InferenceConfig withDocumentWaitMillis(long value) {
        return new InferenceConfig(modelPath, maxSequences, tokenBudget, attentionBudget, maxQueued, tenantShare, maxTokensCap,
                value, maxDocumentTokens, duplicateWindowMillis, modelName, kvState, backend, chatTemplate);
    }

    public InferenceConfig withMaxDocumentTokens(int value) {
        return new InferenceConfig(modelPath, maxSequences, tokenBudget, attentionBudget, maxQueued, tenantShare, maxTokensCap,
                documentWaitMillis, value, duplicateWindowMillis, modelName, kvState, backend, chatTemplate);
    }

    public InferenceConfig withDuplicateWindowMillis(long value) {
        return new InferenceConfig(modelPath, maxSequences, tokenBudget, attentionBudget, maxQueued, tenantShare, maxTokensCap,
                documentWaitMillis, maxDocumentTokens, value, modelName, kvState, backend, chatTemplate);
    }

    public InferenceConfig withModelName(String value) {
        return new InferenceConfig(modelPath, maxSequences, tokenBudget, attentionBudget, maxQueued, tenantShare, maxTokensCap,
                documentWaitMillis, maxDocumentTokens, duplicateWindowMillis, value, kvState, backend, chatTemplate);
    }

    public InferenceConfig withKvState(KvStateConfig value) {
        return new InferenceConfig(modelPath, maxSequences, tokenBudget, attentionBudget, maxQueued, tenantShare, maxTokensCap,
                documentWaitMillis, maxDocumentTokens, duplicateWindowMillis, modelName, value, backend, chatTemplate);
    }

    public InferenceConfig withBackend(String value) {
        return new InferenceConfig(modelPath, maxSequences, tokenBudget, attentionBudget, maxQueued, tenantShare, maxTokensCap,
                documentWaitMillis, maxDocumentTokens, duplicateWindowMillis, modelName, kvState, value, chatTemplate);
    }

    /** Sets the chat template source ({@code null}: the model's own). */
    public InferenceConfig withChatTemplate(String value) {
        return new InferenceConfig(modelPath, maxSequences, tokenBudget, attentionBudget, maxQueued, tenantShare, maxTokensCap,
                documentWaitMillis, maxDocumentTokens, duplicateWindowMillis, modelName, kvState, backend, value);
    }
}
