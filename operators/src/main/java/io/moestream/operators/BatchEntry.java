package io.moestream.operators;

import io.moestream.runtime.model.GenerationRequest;
import io.moestream.runtime.model.GenerationResult;
import io.moestream.runtime.model.KvCache;
import io.moestream.runtime.model.Model;
import io.moestream.schemas.FinishReason;
import io.moestream.schemas.Generation;
import io.moestream.schemas.Prompt;
import io.moestream.schemas.PromptMode;
import io.moestream.schemas.Timings;
import io.moestream.schemas.Usage;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

/**
 * One prompt admitted to a batch of the {@link InferenceOperator}: its key, its engine request
 * (whose cache the engine appends to) and what is needed to answer it or run it again.
 */
final class BatchEntry {

    private final String key;
    private final PendingPrompt pending;
    /** A copy of the cache the request started from ({@code null}: an empty cache), to run it again. */
    private final KvCache base;
    private final int cachedTokens;
    /** The conversation's metadata before this turn ({@code null}: first turn, or not a conversation). */
    private final ContextMeta meta;
    private GenerationRequest request;

    BatchEntry(String key, PendingPrompt pending, KvCache base, int cachedTokens, ContextMeta meta,
            GenerationRequest request) {
        this.key = key;
        this.pending = pending;
        this.base = base;
        this.cachedTokens = cachedTokens;
        this.meta = meta;
        this.request = request;
    }

    String key() {
        return key;
    }

    PendingPrompt pending() {
        return pending;
    }

    ContextMeta meta() {
        return meta;
    }

    GenerationRequest request() {
        return request;
    }

    /** A conversation turn: the cache is stored back after the answer. */
    boolean conversation() {
        return request.commitAnswer();
    }

    /** Replaces the request's cache by a fresh one from {@link #base} (a failed batch may have appended to it). */
    void retryOnFreshCache(Model model) {
        KvCache cache = base == null
                ? model.newCache(request.cache().codec(), request.cache().blockTokens())
                : base.copy();
        request = new GenerationRequest(cache, request.promptIds(), request.params(), request.commitAnswer());
    }

    Generation toGeneration(GenerationResult result, long queuedMillis, String modelName) {
        Prompt prompt = pending.prompt();
        return Generation.newBuilder()
                .setRequestId(prompt.getRequestId())
                .setTenant(prompt.getTenant())
                .setContextId(prompt.getMode() == PromptMode.STATELESS ? null : prompt.getContextId())
                .setText(result.text())
                .setTokenIds(Arrays.stream(result.tokenIds()).boxed().collect(Collectors.toList()))
                .setFinishReason(FinishReason.valueOf(result.finishReason().name()))
                .setUsage(Usage.newBuilder()
                        .setPromptTokens(request.promptIds().length)
                        .setCachedTokens(cachedTokens)
                        .setGeneratedTokens(result.tokenIds().length)
                        .build())
                .setTimings(Timings.newBuilder()
                        .setQueuedMs(queuedMillis)
                        .setPrefillMs(TimeUnit.NANOSECONDS.toMillis(result.prefillNanos()))
                        .setDecodeMs(TimeUnit.NANOSECONDS.toMillis(result.decodeNanos()))
                        .build())
                .setModel(modelName)
                .build();
    }
}
