package io.moestream.operators;

import io.moestream.runtime.kv.KvCodec;
import io.moestream.runtime.kv.KvStateException;
import io.moestream.runtime.model.Engine;
import io.moestream.runtime.model.GenerationRequest;
import io.moestream.runtime.model.GenerationResult;
import io.moestream.runtime.model.KvCache;
import io.moestream.runtime.model.Model;
import io.moestream.runtime.sampler.SamplingParams;
import io.moestream.runtime.tokenizer.Tokenizer;
import io.moestream.schemas.ContextReady;
import io.moestream.schemas.Document;
import io.moestream.schemas.ErrorCode;
import io.moestream.schemas.Generation;
import io.moestream.schemas.InferenceError;
import io.moestream.schemas.Prompt;
import io.moestream.schemas.PromptMode;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.flink.annotation.VisibleForTesting;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.state.StateDescriptor;
import org.apache.flink.api.common.state.StateTtlConfig;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.common.typeutils.base.IntSerializer;
import org.apache.flink.api.common.typeutils.base.array.BytePrimitiveArraySerializer;
import org.apache.flink.core.memory.DataOutputSerializer;
import org.apache.flink.formats.avro.typeutils.AvroTypeInfo;
import org.apache.flink.metrics.Counter;
import org.apache.flink.runtime.state.VoidNamespace;
import org.apache.flink.runtime.state.VoidNamespaceSerializer;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.KeyedStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.InternalTimer;
import org.apache.flink.streaming.api.operators.InternalTimerService;
import org.apache.flink.streaming.api.operators.Triggerable;
import org.apache.flink.streaming.api.operators.TwoInputStreamOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The inference operator: keyed by {@link ContextKey} (tenant, context), input 1 document parts,
 * input 2 prompts; main output {@link Generation}, side outputs {@link OutputTags#CONTEXTS} and
 * {@link OutputTags#ERRORS}.
 *
 * <p><b>Documents</b> are prefilled as their parts arrive (in order; part 0 starts or replaces the
 * document) into the context's KV-cache, kept in keyed state; the last part makes the context
 * ready and emits a {@link ContextReady}.
 *
 * <p><b>Prompts</b> are buffered in keyed state and run as one batch across keys
 * ({@link Engine#generate}) when {@code batchSize} are buffered or {@code maxWaitMillis} after the
 * first one arrived. A STATELESS prompt starts from an empty cache, a DOCUMENT prompt from a copy of
 * its document's cache (the document is never changed), a CONVERSATION prompt from the conversation's
 * cache, which then stores prompt and answer. A conversation runs at most one turn per batch, so its
 * turns stay in order. DOCUMENT prompts for a document still arriving wait (in keyed state, with a
 * checkpointed timer) up to {@code documentWaitMillis}.
 *
 * <p><b>State layout</b> (docs/operators.md): per context a {@link ContextMeta} value (tenant, kind, token
 * ids, length, KV metadata with codec and head policy, timestamps) and a map of KV blocks
 * ({@link #KV_BLOCKS_STATE}: block index to {@code PagedKvCache.encodeBlock}); a prefill or a turn writes
 * only the blocks it changed. Both expire after {@link KvStateConfig#ttlMillis()} without use, and a
 * tenant may hold at most {@link KvStateConfig#tenantMaxContexts()} contexts per parallel instance.
 *
 * <p><b>Checkpoints</b>: buffered prompts live in keyed state, so they are in every snapshot, move
 * with their key group on rescale and run after a restore; the in-memory index of keys with
 * buffered prompts is rebuilt from the state backend in {@link #open()}, where the batch timer
 * (processing-time timers of the operator itself are not checkpointed) is armed again.
 *
 * <p>Outputs carry no timestamps: generation is processing-time work and a buffered request may be
 * answered after the watermark passed its input.
 */
public class InferenceOperator extends AbstractStreamOperator<Generation>
        implements TwoInputStreamOperator<Document, Prompt, Generation>, Triggerable<String, VoidNamespace> {

    private static final long serialVersionUID = 1L;

    private static final Logger LOG = LoggerFactory.getLogger(InferenceOperator.class);

    /** KV-cache of a context before state format 2 (one {@link KvCache#toBytes()} array): read, then cleared. */
    public static final String LEGACY_KV_STATE = "kv-cache";
    /** KV blocks of a context: block index to {@code PagedKvCache.encodeBlock(i)}. */
    public static final String KV_BLOCKS_STATE = "kv-blocks";
    /** {@link ContextMeta} of a context (includes the KV metadata and token ids). */
    public static final String META_STATE = "context-meta";
    /** A tenant at its cap is recounted (expired contexts leave the count) at most this often. */
    static final long TENANT_RECOUNT_MILLIS = 60_000;
    /** Prompts waiting for their batch. */
    public static final String PENDING_STATE = "pending-prompts";
    /** DOCUMENT prompts waiting for their document's last part. */
    public static final String WAITING_STATE = "waiting-prompts";
    /** Keyed processing-time timers ending the wait of {@link #WAITING_STATE}. */
    public static final String DOCUMENT_WAIT_TIMERS = "document-wait";

    // ---------------- configuration ----------------

    private final InferenceConfig config;

    // ---------------- transient runtime ----------------

    private transient Model model;
    private transient Engine engine;
    private transient Tokenizer tokenizer;
    private transient String modelName;
    /** Keys with buffered prompts, oldest first, and how many each has; rebuilt from state in open(). */
    private transient LinkedHashMap<String, Integer> pendingByKey;
    private transient int pendingTotal;
    private transient ScheduledFuture<?> batchTimer;
    private transient InternalTimerService<VoidNamespace> documentWaitTimers;
    private transient Counter generationsOut;
    private transient Counter errorsOut;
    private transient Counter batchesRun;
    private transient Counter kvBlocksWritten;
    private transient KvCodec kvCodec;
    /** Contexts per tenant held by this parallel instance (when capped); rebuilt from state in open(). */
    private transient Map<String, Integer> contextsByTenant;
    private transient Map<String, Long> tenantRecountedAt;

    // ---------------- checkpointed state (keyed) ----------------

    private transient ValueState<byte[]> legacyKvState;
    private transient MapState<Integer, byte[]> kvBlocks;
    private transient ValueState<ContextMeta> metaState;
    private transient ListState<PendingPrompt> pendingState;
    private transient ListState<PendingPrompt> waitingState;

    public InferenceOperator(InferenceConfig config) {
        this.config = config;
    }

    /**
     * Keys documents and prompts by {@link ContextKey} and connects them to an inference operator
     * (name and uid {@code "inference"}).
     *
     * <pre>{@code
     * SingleOutputStreamOperator<Generation> generations = InferenceOperator.apply(documents, prompts, config);
     * DataStream<ContextReady> ready = generations.getSideOutput(OutputTags.CONTEXTS);
     * DataStream<InferenceError> errors = generations.getSideOutput(OutputTags.ERRORS);
     * }</pre>
     */
    public static SingleOutputStreamOperator<Generation> apply(
            DataStream<Document> documents, DataStream<Prompt> prompts, InferenceConfig config) {
        KeyedStream<Document, String> keyedDocuments = documents.keyBy(ContextKey.documentSelector(), Types.STRING);
        KeyedStream<Prompt, String> keyedPrompts = prompts.keyBy(ContextKey.promptSelector(), Types.STRING);
        return keyedDocuments.connect(keyedPrompts)
                .transform("inference", new AvroTypeInfo<>(Generation.class), new InferenceOperator(config))
                .uid("inference");
    }

    @Override
    public void open() throws Exception {
        super.open();
        model = SharedModels.get(Path.of(config.modelPath()));
        engine = new Engine(model);
        tokenizer = model.tokenizer();
        modelName = config.modelName() != null ? config.modelName() : model.name();

        KvStateConfig kv = config.kvState();
        kvCodec = kv.kvCodec();
        model.newCache(kvCodec, kv.blockTokens()); // fails now, naming codec and sizes, if they do not fit the model
        legacyKvState = getPartitionedState(withTtl(new ValueStateDescriptor<>(LEGACY_KV_STATE, BytePrimitiveArraySerializer.INSTANCE)));
        kvBlocks = getPartitionedState(withTtl(new MapStateDescriptor<>(KV_BLOCKS_STATE, IntSerializer.INSTANCE,
                BytePrimitiveArraySerializer.INSTANCE)));
        metaState = getPartitionedState(withTtl(new ValueStateDescriptor<>(META_STATE, ContextMetaSerializer.INSTANCE)));
        pendingState = getPartitionedState(new ListStateDescriptor<>(PENDING_STATE, PendingPromptSerializer.INSTANCE));
        waitingState = getPartitionedState(new ListStateDescriptor<>(WAITING_STATE, PendingPromptSerializer.INSTANCE));
        documentWaitTimers = getInternalTimerService(DOCUMENT_WAIT_TIMERS, VoidNamespaceSerializer.INSTANCE, this);

        generationsOut = getMetricGroup().counter("generations");
        errorsOut = getMetricGroup().counter("errors");
        batchesRun = getMetricGroup().counter("batches");
        kvBlocksWritten = getMetricGroup().counter("kvBlocksWritten");
        getMetricGroup().gauge("pendingRequests", () -> pendingTotal);

        rebuildPendingIndex();
        rebuildTenantCounts();
        if (pendingTotal > 0) {
            LOG.info("{} buffered prompts of {} keys restored; they run within {} ms",
                    pendingTotal, pendingByKey.size(), config.maxWaitMillis());
            armBatchTimer();
        }
    }

    /**
     * Context state expires after {@code ttlMillis} without being read or written (every use of a context
     * reads its metadata and all its blocks, so they expire together); 0 = never.
     */
    private <S extends StateDescriptor<?, ?>> S withTtl(S descriptor) {
        long ttl = config.kvState().ttlMillis();
        if (ttl > 0) {
            descriptor.enableTimeToLive(StateTtlConfig.newBuilder(Duration.ofMillis(ttl))
                    .setUpdateType(StateTtlConfig.UpdateType.OnReadAndWrite)
                    .setStateVisibility(StateTtlConfig.StateVisibility.NeverReturnExpired)
                    .build());
        }
        return descriptor;
    }

    // ---------------- context state: KV blocks, metadata, tenant cap ----------------

    /** A new, empty cache with the configured codec and block size. */
    private KvCache newCache() {
        return model.newCache(kvCodec, config.kvState().blockTokens());
    }

    /**
     * The current key's cache as stored (its own codec and head policy, whatever the configuration says
     * now), or a new empty one when {@code meta} is null.
     */
    private KvCache loadCache(ContextMeta meta) throws Exception {
        if (meta == null) {
            return newCache();
        }
        if (!meta.hasKv()) { // written before state format 2
            byte[] legacy = legacyKvState.value();
            if (legacy == null) {
                throw new KvStateException("context '" + meta.contextId() + "' has no KV-cache in state");
            }
            return model.cacheFromBytes(legacy);
        }
        return KvCache.restore(model, meta.tokenIds(), meta.kvMeta(), i -> {
            byte[] block;
            try {
                block = kvBlocks.get(i);
            } catch (Exception e) {
                throw new KvStateException("cannot read KV block " + i + " of context '" + meta.contextId() + "': " + e, e);
            }
            if (block == null) {
                throw new KvStateException("KV block " + i + " of context '" + meta.contextId() + "' is missing from state");
            }
            return block;
        });
    }

    /**
     * Stores the current key's context: the blocks changed since {@link #loadCache} (all of a new cache)
     * and {@code meta} with the cache's token ids and KV metadata. {@code previous} is the stored metadata
     * the cache was loaded from (null: a new context, or a document started again, whose old blocks go).
     */
    private ContextMeta storeCache(KvCache cache, ContextMeta meta, ContextMeta previous) throws Exception {
        if (previous == null) {
            kvBlocks.clear();
        }
        if (previous == null || !previous.hasKv()) {
            legacyKvState.clear();
        }
        for (int i : cache.paged().dirtyBlocks()) {
            kvBlocks.put(i, cache.paged().encodeBlock(i));
            kvBlocksWritten.inc();
        }
        cache.paged().markClean();
        ContextMeta stored = meta.withKv(cache.tokens(), cache.paged().encodeMeta());
        metaState.update(stored);
        return stored;
    }

    /** Removes the current key's context. */
    private void clearContext(ContextMeta previous) throws Exception {
        kvBlocks.clear();
        legacyKvState.clear();
        metaState.clear();
        if (previous != null) {
            contextGone(previous.tenant());
        }
    }

    /** Bytes the context takes in state: the serialized metadata plus every stored block. */
    private long storedBytes(ContextMeta meta, KvCache cache) throws Exception {
        DataOutputSerializer out = new DataOutputSerializer(256);
        ContextMetaSerializer.INSTANCE.serialize(meta, out);
        return out.length() + cache.paged().stateBytes() - meta.kvMeta().length;
    }

    private void rebuildTenantCounts() throws Exception {
        contextsByTenant = new HashMap<>();
        tenantRecountedAt = new HashMap<>();
        if (config.kvState().tenantMaxContexts() > 0) {
            countContexts(null);
        }
    }

    /** Recounts the contexts of {@code tenant} (null: of every tenant) from the state backend. */
    private void countContexts(String tenant) throws Exception {
        Object previousKey = getCurrentKey();
        List<String> keys;
        try (Stream<String> stream = this.<String>getKeyedStateBackend().getKeys(META_STATE, VoidNamespace.INSTANCE)) {
            keys = stream.filter(k -> tenant == null || ContextKey.tenant(k).equals(tenant)).collect(Collectors.toList());
        }
        if (tenant != null) {
            contextsByTenant.remove(tenant);
        }
        try {
            for (String key : keys) {
                setCurrentKey(key);
                if (metaState.value() != null) { // expired contexts read as null
                    contextsByTenant.merge(ContextKey.tenant(key), 1, Integer::sum);
                }
            }
        } finally {
            if (previousKey != null) {
                setCurrentKey(previousKey);
            }
        }
    }

    /**
     * Whether {@code tenant} may start one more context on this parallel instance; if so it is counted.
     * At the cap the tenant's contexts are recounted first (at most every {@link #TENANT_RECOUNT_MILLIS}),
     * so expired ones free their place.
     */
    private boolean admitNewContext(String tenant) throws Exception {
        int cap = config.kvState().tenantMaxContexts();
        if (cap <= 0) {
            return true;
        }
        if (contextsByTenant.getOrDefault(tenant, 0) >= cap) {
            long now = now();
            Long last = tenantRecountedAt.get(tenant);
            if (last == null || now - last >= TENANT_RECOUNT_MILLIS) {
                tenantRecountedAt.put(tenant, now);
                countContexts(tenant);
            }
            if (contextsByTenant.getOrDefault(tenant, 0) >= cap) {
                return false;
            }
        }
        contextsByTenant.merge(tenant, 1, Integer::sum);
        return true;
    }

    private void contextGone(String tenant) {
        if (config.kvState().tenantMaxContexts() > 0) {
            contextsByTenant.computeIfPresent(tenant, (t, n) -> n <= 1 ? null : n - 1);
        }
    }

    private String contextLimitMessage(String tenant, String contextId) {
        return "tenant '" + tenant + "' already holds " + config.kvState().tenantMaxContexts() + " contexts (the cap"
                + " of moestream.tenant.max-contexts per parallel instance), so context '" + contextId + "' cannot be"
                + " created: reuse or let old contexts expire (moestream.state.ttl), or raise the cap";
    }

    private void rebuildPendingIndex() throws Exception {
        pendingByKey = new LinkedHashMap<>();
        pendingTotal = 0;
        List<String> keys;
        try (Stream<String> stream = this.<String>getKeyedStateBackend().getKeys(PENDING_STATE, VoidNamespace.INSTANCE)) {
            keys = stream.collect(Collectors.toList());
        }
        for (String key : keys) {
            setCurrentKey(key);
            int n = 0;
            for (PendingPrompt ignored : orEmpty(pendingState.get())) {
                n++;
            }
            if (n > 0) {
                pendingByKey.put(key, n);
                pendingTotal += n;
            }
        }
    }

    // ---------------- documents ----------------

    @Override
    public void processElement1(StreamRecord<Document> element) throws Exception {
        Document part = element.getValue();
        long now = now();
        ContextMeta meta = metaState.value();
        if (meta != null && meta.kind() == ContextMeta.Kind.CONVERSATION) {
            emitError(ErrorRecords.forDocument(part, ErrorCode.INVALID_PARAMS, "context '" + part.getDocumentId()
                    + "' is a conversation of tenant '" + part.getTenant() + "': give the document another id", now));
            return;
        }
        KvCache cache;
        int[] ids;
        if (part.getPart() == 0) {
            if (meta == null && !admitNewContext(part.getTenant())) {
                emitError(ErrorRecords.forDocument(part, ErrorCode.CONTEXT_LIMIT,
                        contextLimitMessage(part.getTenant(), part.getDocumentId()), now));
                return;
            }
            cache = newCache();
            ids = tokenizer.encodePrompt(part.getText());
        } else if (meta == null) {
            emitError(ErrorRecords.forDocument(part, ErrorCode.DOCUMENT_OUT_OF_ORDER, "part " + part.getPart()
                    + " of document '" + part.getDocumentId() + "' arrived but part 0 did not (or the document was"
                    + " rejected): send the parts in order, starting at 0", now));
            return;
        } else if (meta.complete()) {
            emitError(ErrorRecords.forDocument(part, ErrorCode.DOCUMENT_OUT_OF_ORDER, "part " + part.getPart()
                    + " of document '" + part.getDocumentId() + "' arrived after its last part (" + (meta.nextPart() - 1)
                    + "): to replace the document send it again from part 0", now));
            return;
        } else if (part.getPart() != meta.nextPart()) {
            emitError(ErrorRecords.forDocument(part, ErrorCode.DOCUMENT_OUT_OF_ORDER, "part " + part.getPart()
                    + " of document '" + part.getDocumentId() + "' arrived but part " + meta.nextPart()
                    + " is expected next: send the parts in order, without gaps", now));
            return;
        } else {
            cache = loadCache(meta);
            ids = tokenizer.encode(part.getText(), false);
        }
        boolean newContext = part.getPart() == 0 && meta == null;

        if (cache.length() + ids.length > model.contextLength()) {
            String message = "document '" + part.getDocumentId() + "' needs " + (cache.length() + ids.length)
                    + " tokens up to part " + part.getPart() + " but the model's context window is "
                    + model.contextLength() + " tokens: split it into smaller documents";
            emitError(ErrorRecords.forDocument(part, ErrorCode.DOCUMENT_TOO_LARGE, message, now));
            clearContext(meta);
            if (newContext) {
                contextGone(part.getTenant());
            }
            failWaiting("document '" + part.getDocumentId() + "' was rejected: " + message, now);
            return;
        }

        long started = System.nanoTime();
        KvStateConfig kv = config.kvState();
        boolean classify = kv.headPruning() && !cache.headPolicy().anyStreaming();
        try {
            if (classify) {
                cache.startHeadClassification(kv.pruningSink(), kv.pruningWindow(), model.config());
            }
            if (ids.length > 0) {
                engine.forward(cache, ids);
            }
            if (classify) {
                // until a policy with streaming heads is set, each part's prefill is observed and decides
                cache.applyHeadClassification(kv.pruningFraction(), kv.pruningMaxOutsideMass());
            }
        } catch (RuntimeException e) {
            if (newContext) {
                contextGone(part.getTenant());
            }
            LOG.warn("prefill of document part failed", e);
            emitError(ErrorRecords.forDocument(part, ErrorCode.MODEL_ERROR, "prefill of part " + part.getPart()
                    + " of document '" + part.getDocumentId() + "' failed: " + e + "; the part can be sent again", now));
            return;
        }
        long prefillNanos = System.nanoTime() - started;

        ContextMeta previous = part.getPart() == 0 ? null : meta;
        meta = part.getPart() == 0
                ? ContextMeta.documentStarted(part.getTenant(), part.getDocumentId(), cache.length(), prefillNanos,
                        part.getLast(), now)
                : meta.withPart(cache.length(), prefillNanos, part.getLast(), now);
        meta = storeCache(cache, meta, previous);

        if (meta.complete()) {
            output.collect(OutputTags.CONTEXTS, new StreamRecord<>(contextReady(meta, storedBytes(meta, cache))));
            releaseWaiting(ContextKey.of(part));
            flushIfFull();
        }
    }

    private ContextReady contextReady(ContextMeta meta, long kvBytes) {
        long fp16Bytes = 2L * model.config().layers() * meta.tokens() * model.config().kvDim() * 2L;
        return ContextReady.newBuilder()
                .setTenant(meta.tenant())
                .setContextId(meta.contextId())
                .setTokens(meta.tokens())
                .setKvBytes(kvBytes)
                .setCompressionRatio(kvBytes == 0 ? 0f : (float) fp16Bytes / kvBytes)
                .setPrefillMs(TimeUnit.NANOSECONDS.toMillis(meta.prefillNanos()))
                .setModel(modelName)
                .build();
    }

    /** The current key's document is complete: its waiting prompts join the batch buffer. */
    private void releaseWaiting(String key) throws Exception {
        for (PendingPrompt p : orEmpty(waitingState.get())) {
            documentWaitTimers.deleteProcessingTimeTimer(VoidNamespace.INSTANCE, waitDeadline(p));
            enqueue(key, p);
        }
        waitingState.clear();
    }

    /** The current key's document will not complete: its waiting prompts are answered with an error. */
    private void failWaiting(String message, long now) throws Exception {
        for (PendingPrompt p : orEmpty(waitingState.get())) {
            documentWaitTimers.deleteProcessingTimeTimer(VoidNamespace.INSTANCE, waitDeadline(p));
            emitError(ErrorRecords.forPrompt(p.prompt(), ErrorCode.DOCUMENT_INCOMPLETE, message, now));
        }
        waitingState.clear();
    }

    // ---------------- prompts ----------------

    @Override
    public void processElement2(StreamRecord<Prompt> element) throws Exception {
        Prompt prompt = element.getValue();
        PendingPrompt pending = new PendingPrompt(prompt, now());
        if (prompt.getMode() == PromptMode.DOCUMENT && !documentReady(pending)) {
            return;
        }
        enqueue((String) getCurrentKey(), pending);
        flushIfFull();
    }

    /**
     * Whether the current key's document can answer the prompt now; if not, the prompt is answered
     * with an error (no such document) or waits for the document's last part.
     */
    private boolean documentReady(PendingPrompt pending) throws Exception {
        ContextMeta meta = metaState.value();
        Prompt prompt = pending.prompt();
        if (meta != null && meta.kind() != ContextMeta.Kind.DOCUMENT) {
            emitError(ErrorRecords.forPrompt(prompt, ErrorCode.UNKNOWN_CONTEXT, "tenant '" + prompt.getTenant()
                    + "' has no document '" + prompt.getContextId() + "' (it is a conversation)"
                    + ": use mode CONVERSATION, or check context_id and tenant", now()));
            return false;
        }
        // Documents and prompts come from different topics, so a question may overtake its document's
        // first part: an unknown document is waited for like an incomplete one.
        if (meta == null || !meta.complete()) {
            waitingState.add(pending);
            documentWaitTimers.registerProcessingTimeTimer(VoidNamespace.INSTANCE, waitDeadline(pending));
            return false;
        }
        return true;
    }

    private long waitDeadline(PendingPrompt p) {
        return p.arrivalMillis() + config.documentWaitMillis();
    }

    /** A document-wait deadline passed for the current key. */
    @Override
    public void onProcessingTime(InternalTimer<String, VoidNamespace> timer) throws Exception {
        List<PendingPrompt> stillWaiting = new ArrayList<>();
        ContextMeta meta = metaState.value();
        for (PendingPrompt p : orEmpty(waitingState.get())) {
            if (waitDeadline(p) > timer.getTimestamp()) {
                stillWaiting.add(p);
                continue;
            }
            if (meta == null) {
                emitError(ErrorRecords.forPrompt(p.prompt(), ErrorCode.UNKNOWN_CONTEXT, "tenant '"
                        + p.prompt().getTenant() + "' has no document '" + p.prompt().getContextId()
                        + "' (none arrived within " + config.documentWaitMillis() + " ms): send the document"
                        + " first, or check context_id and tenant", timer.getTimestamp()));
                continue;
            }
            String received = "parts 0.." + (meta.nextPart() - 1);
            emitError(ErrorRecords.forPrompt(p.prompt(), ErrorCode.DOCUMENT_INCOMPLETE, "document '"
                    + p.prompt().getContextId() + "' did not complete within " + config.documentWaitMillis()
                    + " ms (received " + received + ", the part with last=true has not arrived): send its"
                    + " remaining parts, then ask again", timer.getTimestamp()));
        }
        if (stillWaiting.isEmpty()) {
            waitingState.clear();
        } else {
            waitingState.update(stillWaiting);
        }
    }

    @Override
    public void onEventTime(InternalTimer<String, VoidNamespace> timer) {}

    private void enqueue(String key, PendingPrompt pending) throws Exception {
        pendingState.add(pending);
        pendingByKey.merge(key, 1, Integer::sum);
        pendingTotal++;
    }

    private void flushIfFull() throws Exception {
        if (pendingTotal >= config.batchSize()) {
            flush(false);
        }
        if (pendingTotal > 0) {
            armBatchTimer();
        }
    }

    private void armBatchTimer() {
        if (batchTimer != null) {
            return;
        }
        batchTimer = getProcessingTimeService().registerTimer(now() + config.maxWaitMillis(), time -> {
            batchTimer = null;
            flush(true);
        });
    }

    /** Runs batches while a full one is buffered, or until nothing is buffered when {@code drain}. */
    private void flush(boolean drain) throws Exception {
        Object previousKey = getCurrentKey();
        try {
            while (pendingTotal > 0 && (drain || pendingTotal >= config.batchSize())) {
                runBatch(takeBatch());
            }
        } finally {
            if (previousKey != null) {
                setCurrentKey(previousKey);
            }
        }
    }

    /** Takes up to {@code batchSize} runnable prompts out of the buffer, oldest keys first. */
    private List<BatchEntry> takeBatch() throws Exception {
        List<BatchEntry> batch = new ArrayList<>(config.batchSize());
        Iterator<Map.Entry<String, Integer>> keys = pendingByKey.entrySet().iterator();
        while (batch.size() < config.batchSize() && keys.hasNext()) {
            Map.Entry<String, Integer> queue = keys.next();
            setCurrentKey(queue.getKey());
            List<PendingPrompt> rest = new ArrayList<>();
            int before = 0;
            boolean turnTaken = false; // a conversation's next turn needs this turn's cache: next batch
            for (PendingPrompt p : orEmpty(pendingState.get())) {
                before++;
                if (turnTaken || batch.size() >= config.batchSize()) {
                    rest.add(p);
                    continue;
                }
                BatchEntry admitted = admit(queue.getKey(), p);
                if (admitted != null) {
                    batch.add(admitted);
                    turnTaken = admitted.conversation();
                }
            }
            pendingTotal -= before - rest.size();
            if (rest.isEmpty()) {
                pendingState.clear();
                keys.remove();
            } else {
                pendingState.update(rest);
                queue.setValue(rest.size());
            }
        }
        return batch;
    }

    /** Prepares one prompt of the current key for the batch, or answers it with an error (null). */
    private BatchEntry admit(String key, PendingPrompt pending) throws Exception {
        Prompt prompt = pending.prompt();
        long now = now();
        try {
            KvCache cache = null;
            ContextMeta meta = null;
            int[] ids;
            switch (prompt.getMode()) {
                case DOCUMENT -> {
                    if (!documentReady(pending)) {
                        return null;
                    }
                    cache = loadCache(metaState.value());
                    ids = tokenizer.encode(prompt.getText(), false);
                }
                case CONVERSATION -> {
                    meta = metaState.value();
                    if (meta != null && meta.kind() != ContextMeta.Kind.CONVERSATION) {
                        emitError(ErrorRecords.forPrompt(prompt, ErrorCode.INVALID_PARAMS, "context '"
                                + prompt.getContextId() + "' is a document: ask about it with mode DOCUMENT, or use"
                                + " another context_id for the conversation", now));
                        return null;
                    }
                    cache = meta == null ? null : loadCache(meta);
                    ids = cache == null ? tokenizer.encodePrompt(prompt.getText()) : tokenizer.encode(prompt.getText(), false);
                }
                default -> ids = tokenizer.encodePrompt(prompt.getText());
            }
            KvCache base = cache == null ? null : cache.copy(); // for a retry (sealed blocks are shared)
            if (cache == null) {
                cache = newCache();
            }
            int cached = cache.length();
            if (ids.length == 0) {
                emitError(ErrorRecords.forPrompt(prompt, ErrorCode.INVALID_PARAMS,
                        "text encodes to no tokens: send some text", now));
                return null;
            }
            int room = model.contextLength() - cached - ids.length;
            if (room < 1) {
                emitError(ErrorRecords.forPrompt(prompt, ErrorCode.CONTEXT_OVERFLOW, "prompt has " + ids.length
                        + " tokens after " + cached + " tokens of context, but the model's context window is "
                        + model.contextLength() + " tokens and the answer needs at least one: shorten the prompt"
                        + (cached > 0 ? " or start a new context" : ""), now));
                return null;
            }
            int maxTokens = Math.min(Math.min(prompt.getMaxTokens(), config.maxTokensCap()), room);
            if (maxTokens < 1) {
                emitError(ErrorRecords.forPrompt(prompt, ErrorCode.INVALID_PARAMS, "max_tokens is "
                        + prompt.getMaxTokens() + ": it must be between 1 and " + config.maxTokensCap(), now));
                return null;
            }
            SamplingParams params = PromptSampling.params(prompt, maxTokens);
            boolean conversation = prompt.getMode() == PromptMode.CONVERSATION;
            if (conversation && meta == null && !admitNewContext(prompt.getTenant())) {
                emitError(ErrorRecords.forPrompt(prompt, ErrorCode.CONTEXT_LIMIT,
                        contextLimitMessage(prompt.getTenant(), prompt.getContextId()), now));
                return null;
            }
            return new BatchEntry(key, pending, base, cached, meta, new GenerationRequest(cache, ids, params, conversation));
        } catch (RuntimeException e) {
            LOG.warn("cannot prepare request {}", prompt.getRequestId(), e);
            emitError(ErrorRecords.forPrompt(prompt, ErrorCode.MODEL_ERROR, "cannot prepare the request: " + e, now));
            return null;
        }
    }

    private void runBatch(List<BatchEntry> batch) throws Exception {
        if (batch.isEmpty()) {
            return;
        }
        long started = now();
        List<GenerationResult> results = generate(batch);
        batchesRun.inc();
        long now = now();
        for (int i = 0; i < batch.size(); i++) {
            BatchEntry entry = batch.get(i);
            GenerationResult result = results.get(i);
            Prompt prompt = entry.pending().prompt();
            if (result == null) {
                if (entry.conversation() && entry.meta() == null) {
                    contextGone(prompt.getTenant()); // the new conversation was not created
                }
                continue; // answered with MODEL_ERROR
            }
            setCurrentKey(entry.key());
            if (entry.conversation()) {
                KvCache cache = entry.request().cache();
                storeCache(cache, entry.meta() == null
                        ? ContextMeta.conversationStarted(prompt.getTenant(), prompt.getContextId(), cache.length(), now)
                        : entry.meta().withTurn(cache.length(), now), entry.meta());
            }
            output.collect(new StreamRecord<>(
                    entry.toGeneration(result, Math.max(0, started - entry.pending().arrivalMillis()), modelName)));
            generationsOut.inc();
        }
    }

    /**
     * Runs the batch; if it fails, runs its requests one by one, so that only the failing ones are
     * answered with MODEL_ERROR (null in the returned list).
     */
    private List<GenerationResult> generate(List<BatchEntry> batch) throws Exception {
        try {
            return engine.generate(batch.stream().map(BatchEntry::request).collect(Collectors.toList()));
        } catch (RuntimeException batchFailure) {
            LOG.warn("a batch of {} requests failed; running them one by one", batch.size(), batchFailure);
        }
        List<GenerationResult> results = new ArrayList<>(batch.size());
        for (BatchEntry entry : batch) {
            try {
                entry.retryOnFreshCache(model);
                results.add(engine.generate(List.of(entry.request())).get(0));
            } catch (RuntimeException e) {
                LOG.warn("request {} failed", entry.pending().prompt().getRequestId(), e);
                setCurrentKey(entry.key());
                emitError(ErrorRecords.forPrompt(entry.pending().prompt(), ErrorCode.MODEL_ERROR,
                        "the model failed on this request: " + e, now()));
                results.add(null);
            }
        }
        return results;
    }

    // ---------------- end of input ----------------

    /** End of (bounded) input: buffered prompts run; prompts waiting for a document get an error. */
    @Override
    public void finish() throws Exception {
        flush(true);
        List<String> keys;
        try (Stream<String> stream = this.<String>getKeyedStateBackend().getKeys(WAITING_STATE, VoidNamespace.INSTANCE)) {
            keys = stream.collect(Collectors.toList());
        }
        for (String key : keys) {
            setCurrentKey(key);
            failWaiting("the input ended before document '" + ContextKey.id(key) + "' completed", now());
        }
        super.finish();
    }

    /** The stored cache of a context, as a whole-cache array ({@link KvCache#toBytes()}); null if none. */
    @VisibleForTesting
    byte[] storedCache(String key) throws Exception {
        setCurrentKey(key);
        ContextMeta meta = metaState.value();
        return meta == null ? null : loadCache(meta).toBytes();
    }

    /** The stored KV blocks of a context (index to bytes). */
    @VisibleForTesting
    Map<Integer, byte[]> storedBlocks(String key) throws Exception {
        setCurrentKey(key);
        Map<Integer, byte[]> blocks = new java.util.TreeMap<>();
        for (Map.Entry<Integer, byte[]> e : kvBlocks.entries()) {
            blocks.put(e.getKey(), e.getValue());
        }
        return blocks;
    }

    @VisibleForTesting
    ContextMeta storedMeta(String key) throws Exception {
        setCurrentKey(key);
        return metaState.value();
    }

    /** Overwrites one stored KV block of a context (tests of damaged state). */
    @VisibleForTesting
    void putStoredBlock(String key, int index, byte[] bytes) throws Exception {
        setCurrentKey(key);
        kvBlocks.put(index, bytes);
    }

    @VisibleForTesting
    long kvBlocksWritten() {
        return kvBlocksWritten.getCount();
    }

    @VisibleForTesting
    long batchesRun() {
        return batchesRun.getCount();
    }

    @VisibleForTesting
    int pendingRequests() {
        return pendingTotal;
    }

    private void emitError(InferenceError.Builder error) {
        output.collect(OutputTags.ERRORS, new StreamRecord<>(error.build()));
        errorsOut.inc();
    }

    private long now() {
        return getProcessingTimeService().getCurrentProcessingTime();
    }

    private static <T> Iterable<T> orEmpty(Iterable<T> values) {
        return values == null ? List.of() : values;
    }
}
