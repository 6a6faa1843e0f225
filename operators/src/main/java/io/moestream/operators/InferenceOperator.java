package io.moestream.operators;

import io.moestream.runtime.kv.KvCodec;
import io.moestream.runtime.kv.KvStateException;
import io.moestream.runtime.model.DefaultModel;
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
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.flink.annotation.VisibleForTesting;
import org.apache.flink.api.common.operators.MailboxExecutor;
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
import org.apache.flink.api.common.typeutils.base.LongSerializer;
import org.apache.flink.api.common.typeutils.base.StringSerializer;
import org.apache.flink.api.common.typeutils.base.array.BytePrimitiveArraySerializer;
import org.apache.flink.core.memory.DataOutputSerializer;
import org.apache.flink.formats.avro.typeutils.AvroTypeInfo;
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
 * {@link OutputTags#ERRORS}. Every prompt is answered exactly once, by a Generation or an
 * InferenceError.
 *
 * <p><b>Continuous batching on the mailbox</b> (like Flink's {@code AsyncWaitOperator}): a prompt
 * joins the queue at once; while work remains, one <em>step</em> at a time is scheduled on the
 * task's mailbox ({@link MailboxExecutor#execute}), so input records, timers and checkpoint barriers
 * interleave with steps. A step, planned by the {@link StepPlanner} (token budget, most sequences,
 * per-tenant share), admits waiting requests, computes one decode token per decoding sequence plus
 * prefill chunks ({@link StepRunner}), samples, and emits every request that finished. When
 * {@code maxQueued} requests are queued or running, {@code processElement} yields to the mailbox
 * (runs steps) until there is room, which back-pressures the sources.
 *
 * <p><b>Contexts</b>: a STATELESS prompt starts from an empty cache, a DOCUMENT prompt from a copy of
 * its document's cache (the document is never changed), a CONVERSATION prompt from the conversation's
 * cache, which then stores prompt and answer; turns of one conversation run one at a time, in order.
 * Document parts are prefilled on arrival; DOCUMENT prompts for a document still arriving wait (in
 * keyed state, with a checkpointed timer) up to {@code documentWaitMillis}.
 *
 * <p><b>State layout</b> (docs/operators.md): per context a {@link ContextMeta} value (tenant, kind, token
 * ids, length, KV metadata with codec and head policy, timestamps) and a map of KV blocks
 * ({@link #KV_BLOCKS_STATE}: block index to {@code PagedKvCache.encodeBlock}); a prefill or a turn writes
 * only the blocks it changed. Both expire after {@link KvStateConfig#ttlMillis()} without use, and a
 * tenant may hold at most {@link KvStateConfig#tenantMaxContexts()} contexts per parallel instance.
 *
 * <p><b>Checkpoints</b>: keyed state is the source of truth. A request leaves {@link #PENDING_STATE}
 * only when its answer is emitted (a conversation's cache is written in the same step), so a snapshot
 * between steps holds every queued and in-flight request; after a restore they run again from the
 * start and seeded sampling regenerates the same text. The in-memory queue is rebuilt from the state
 * backend in {@link #open()}.
 *
 * <p>Outputs carry no timestamps: generation is processing-time work.
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
    /** Prompts queued or in flight, until their answer is emitted. */
    public static final String PENDING_STATE = "pending-prompts";
    /** DOCUMENT prompts waiting for their document's last part. */
    public static final String WAITING_STATE = "waiting-prompts";
    /** Request ids seen lately (request id → processing time first seen). */
    public static final String SEEN_STATE = "seen-requests";
    /** Keyed processing-time timers ending the wait of {@link #WAITING_STATE}. */
    public static final String DOCUMENT_WAIT_TIMERS = "document-wait";
    /** Keyed processing-time timers expiring {@link #SEEN_STATE} entries. */
    public static final String DUPLICATE_TIMERS = "duplicate-expiry";

    // ---------------- configuration ----------------

    private final InferenceConfig config;

    // ---------------- transient runtime ----------------

    private transient MailboxExecutor mailboxExecutor;
    private transient Model model;
    private transient Tokenizer tokenizer;
    private transient String modelName;
    private transient StepRunner runner;
    private transient StepPlanner planner;
    /** Requests not yet admitted, per tenant (first-arrival order of tenants), oldest first. */
    private transient LinkedHashMap<String, ArrayDeque<Queued>> queue;
    private transient int queued;
    /** Admitted requests, in admission order. */
    private transient List<Sequence> running;
    /** Keys with a conversation turn in flight: their next turn waits. */
    private transient Set<String> busyKeys;
    /** Requests in {@link #PENDING_STATE}: queued plus running. */
    private transient int pendingTotal;
    private transient int maxPendingObserved;
    private transient long kvBytes;
    private transient boolean stepScheduled;
    private transient InternalTimerService<VoidNamespace> documentWaitTimers;
    private transient InternalTimerService<VoidNamespace> duplicateTimers;
    private transient InferenceMetrics metrics;
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
    private transient MapState<String, Long> seenState;

    /** A queued request and the key its state lives under. */
    private record Queued(String key, PendingPrompt pending) {
        boolean conversation() {
            return pending.prompt().getMode() == PromptMode.CONVERSATION;
        }
    }

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

    /**
     * Flink 2.x hands every {@code AbstractStreamOperator} (a {@code YieldingOperator}) its mailbox
     * executor when it creates the operator; the older {@code YieldingOperatorFactory} is not needed.
     */
    @Override
    public void setMailboxExecutor(MailboxExecutor mailboxExecutor) {
        super.setMailboxExecutor(mailboxExecutor);
        this.mailboxExecutor = mailboxExecutor;
    }

    @Override
    public void open() throws Exception {
        super.open();
        if (mailboxExecutor == null) { // set up without an operator factory (test harnesses)
            mailboxExecutor = getContainingTask().getMailboxExecutorFactory()
                    .createExecutor(getOperatorConfig().getChainIndex());
        }
        model = SharedModels.get(InferenceConfig.BUNDLED_MODEL.equals(config.modelPath())
                ? DefaultModel.path() : Path.of(config.modelPath()));
        tokenizer = model.tokenizer();
        modelName = config.modelName() != null ? config.modelName() : model.name();
        planner = new StepPlanner(config.tokenBudget(), config.maxSequences(), config.tenantShare());
        queue = new LinkedHashMap<>();
        running = new ArrayList<>();
        busyKeys = new HashSet<>();

        KvStateConfig kv = config.kvState();
        kvCodec = kv.kvCodec();
        model.newCache(kvCodec, kv.blockTokens()); // fails now, naming codec and sizes, if they do not fit the model
        runner = RunnerSelection.open(config.backend(), RunnerSelection.deviceIndex(
                getRuntimeContext().getExternalResourceInfos("gpu"), getRuntimeContext().getTaskInfo().getIndexOfThisSubtask()),
                model, config);
        legacyKvState = getPartitionedState(withTtl(new ValueStateDescriptor<>(LEGACY_KV_STATE, BytePrimitiveArraySerializer.INSTANCE)));
        kvBlocks = getPartitionedState(withTtl(new MapStateDescriptor<>(KV_BLOCKS_STATE, IntSerializer.INSTANCE,
                BytePrimitiveArraySerializer.INSTANCE)));
        metaState = getPartitionedState(withTtl(new ValueStateDescriptor<>(META_STATE, ContextMetaSerializer.INSTANCE)));
        pendingState = getPartitionedState(new ListStateDescriptor<>(PENDING_STATE, PendingPromptSerializer.INSTANCE));
        waitingState = getPartitionedState(new ListStateDescriptor<>(WAITING_STATE, PendingPromptSerializer.INSTANCE));
        seenState = getPartitionedState(
                new MapStateDescriptor<>(SEEN_STATE, StringSerializer.INSTANCE, LongSerializer.INSTANCE));
        documentWaitTimers = getInternalTimerService(DOCUMENT_WAIT_TIMERS, VoidNamespaceSerializer.INSTANCE, this);
        duplicateTimers = getInternalTimerService(DUPLICATE_TIMERS, VoidNamespaceSerializer.INSTANCE,
                new Triggerable<String, VoidNamespace>() {
                    @Override
                    public void onEventTime(InternalTimer<String, VoidNamespace> timer) {}

                    @Override
                    public void onProcessingTime(InternalTimer<String, VoidNamespace> timer) throws Exception {
                        expireSeen(timer.getTimestamp());
                    }
                });

        metrics = new InferenceMetrics(getMetricGroup(), () -> queued, () -> pendingTotal, () -> maxPendingObserved,
                () -> running.size(), () -> kvBytes);

        restore();
    }

    /**
     * Rebuilds the queue from {@link #PENDING_STATE} (oldest first), and from {@link #META_STATE} the
     * context-bytes sum and (when capped) the contexts per tenant, reading only each context's metadata
     * (its KV blocks only for contexts stored before metadata format 3). Reading counts as a use for the
     * state TTL.
     */
    private void restore() throws Exception {
        List<Queued> restored = new ArrayList<>();
        for (String key : keys(PENDING_STATE)) {
            setCurrentKey(key);
            for (PendingPrompt p : orEmpty(pendingState.get())) {
                restored.add(new Queued(key, p));
            }
        }
        restored.sort(Comparator.comparingLong(q -> q.pending().arrivalMillis()));
        for (Queued q : restored) {
            addToQueue(q);
        }
        contextsByTenant = new HashMap<>();
        tenantRecountedAt = new HashMap<>();
        boolean capped = config.kvState().tenantMaxContexts() > 0;
        for (String key : keys(META_STATE)) {
            setCurrentKey(key);
            ContextMeta meta = metaState.value();
            if (meta == null) { // expired
                continue;
            }
            kvBytes += storedBytesInState(meta);
            if (capped) {
                contextsByTenant.merge(ContextKey.tenant(key), 1, Integer::sum);
            }
        }
        if (!restored.isEmpty()) {
            LOG.info("{} queued or in-flight prompts restored; they run again from the start", restored.size());
            scheduleStep();
        }
    }

    private List<String> keys(String state) throws Exception {
        try (Stream<String> stream = this.<String>getKeyedStateBackend().getKeys(state, VoidNamespace.INSTANCE)) {
            return stream.collect(Collectors.toList());
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
            metrics.kvBlocksWritten.inc();
        }
        cache.paged().markClean();
        byte[] kvMeta = cache.paged().encodeMeta();
        ContextMeta stored = meta.withKv(cache.tokens(), kvMeta, cache.paged().stateBytes() - kvMeta.length);
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

    /**
     * Bytes the current key's context takes in state: the serialized metadata plus its blocks' bytes, which
     * the metadata carries since format 3; a context written before is measured by reading every stored
     * block (or the one array of a context written before format 2).
     */
    private long storedBytesInState(ContextMeta meta) throws Exception {
        DataOutputSerializer out = new DataOutputSerializer(256);
        ContextMetaSerializer.INSTANCE.serialize(meta, out);
        long n = out.length();
        if (!meta.hasKv()) {
            byte[] legacy = legacyKvState.value();
            return n + (legacy == null ? 0 : legacy.length);
        }
        if (meta.kvStateBytes() >= 0) { // format 3 knows its blocks' size: no need to read them
            return n + meta.kvStateBytes();
        }
        for (byte[] block : kvBlocks.values()) {
            n += block.length;
        }
        return n;
    }

    /**
     * Bytes the current key's stored context takes (0 when {@code meta} is null), from {@code loaded},
     * the cache {@link #loadCache} gave for it, when there is one.
     */
    private long contextBytes(ContextMeta meta, KvCache loaded) throws Exception {
        if (meta == null) {
            return 0;
        }
        return loaded != null && meta.hasKv() ? storedBytes(meta, loaded) : storedBytesInState(meta);
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

    // ---------------- documents ----------------

    @Override
    public void processElement1(StreamRecord<Document> element) throws Exception {
        awaitRoom();
        Document part = element.getValue();
        long now = now();
        ContextMeta meta = metaState.value();
        if (meta != null && meta.kind() == ContextMeta.Kind.CONVERSATION) {
            emitError(ErrorRecords.forDocument(part, ErrorCode.INVALID_PARAMS, "context '" + part.getDocumentId()
                    + "' is a conversation of tenant '" + part.getTenant() + "': give the document another id", now));
            return;
        }
        if (part.getPart() > 0) {
            String problem = meta == null
                    ? "arrived but part 0 did not (or the document was rejected): send the parts in order, starting at 0"
                    : meta.complete()
                            ? "arrived after its last part (" + (meta.nextPart() - 1)
                                    + "): to replace the document send it again from part 0"
                            : part.getPart() != meta.nextPart()
                                    ? "arrived but part " + meta.nextPart() + " is expected next: send the parts in"
                                            + " order, without gaps"
                                    : null;
            if (problem != null) {
                emitError(ErrorRecords.forDocument(part, ErrorCode.DOCUMENT_OUT_OF_ORDER, "part " + part.getPart()
                        + " of document '" + part.getDocumentId() + "' " + problem, now));
                return;
            }
        }
        boolean newContext = part.getPart() == 0 && meta == null;
        if (newContext && !admitNewContext(part.getTenant())) {
            emitError(ErrorRecords.forDocument(part, ErrorCode.CONTEXT_LIMIT,
                    contextLimitMessage(part.getTenant(), part.getDocumentId()), now));
            return;
        }
        KvCache cache;
        int[] ids;
        long storedBytes;
        try {
            cache = part.getPart() == 0 ? newCache() : loadCache(meta);
            ids = part.getPart() == 0 ? tokenizer.encodePrompt(part.getText()) : tokenizer.encode(part.getText(), false);
            storedBytes = contextBytes(meta, part.getPart() == 0 ? null : cache);
        } catch (RuntimeException e) {
            if (newContext) {
                contextGone(part.getTenant());
            }
            LOG.warn("cannot read the stored document", e);
            emitError(ErrorRecords.forDocument(part, ErrorCode.MODEL_ERROR, "cannot read the stored cache of document '"
                    + part.getDocumentId() + "': " + e + "; send the document again from part 0", now));
            return;
        }

        int limit = documentTokenLimit();
        if (cache.length() + ids.length > limit) {
            String message = "document '" + part.getDocumentId() + "' needs " + (cache.length() + ids.length)
                    + " tokens up to part " + part.getPart() + " but documents may have at most " + limit + " tokens ("
                    + (limit < model.contextLength() ? "moestream.document.max-tokens" : "the model's context window")
                    + "): split it into smaller documents";
            emitError(ErrorRecords.forDocument(part, ErrorCode.DOCUMENT_TOO_LARGE, message, now));
            clearContext(meta);
            if (newContext) {
                contextGone(part.getTenant());
            }
            kvBytes -= storedBytes;
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
                boolean ran = false;
                try {
                    runner.step(List.of(new StepRunner.Chunk(cache, ids, false))).throwFailure();
                    ran = true;
                } finally {
                    runner.detach(cache, ran);
                }
                metrics.prefill(ids.length);
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
        long bytes = storedBytes(meta, cache);
        kvBytes += bytes - storedBytes;

        if (meta.complete()) {
            output.collect(OutputTags.CONTEXTS, new StreamRecord<>(contextReady(meta, bytes)));
            metrics.context();
            releaseWaiting(ContextKey.of(part));
        }
    }

    private int documentTokenLimit() {
        return config.maxDocumentTokens() == 0 ? model.contextLength()
                : Math.min(config.maxDocumentTokens(), model.contextLength());
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

    /** The current key's document is complete: its waiting prompts join the queue. */
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
        awaitRoom();
        Prompt prompt = element.getValue();
        long now = now();
        ProgressStats.PROMPTS.increment();
        if (isDuplicate(prompt, now)) {
            return;
        }
        PendingPrompt pending = new PendingPrompt(prompt, now);
        if (prompt.getMode() == PromptMode.DOCUMENT && !documentReady(pending)) {
            return;
        }
        enqueue((String) getCurrentKey(), pending);
    }

    /**
     * Back-pressure: while {@code maxQueued} requests are queued or running, runs mails (steps) of
     * this task's mailbox instead of taking more input.
     */
    private void awaitRoom() throws Exception {
        if (pendingTotal < config.maxQueued()) {
            return;
        }
        Object key = getCurrentKey();
        while (pendingTotal >= config.maxQueued()) {
            scheduleStep();
            mailboxExecutor.yield();
        }
        setCurrentKey(key); // a step switches keys
    }

    /** Whether the prompt's request id was seen within the duplicate window (then it is answered with an error). */
    private boolean isDuplicate(Prompt prompt, long now) throws Exception {
        long window = config.duplicateWindowMillis();
        if (window == 0) {
            return false;
        }
        Long first = seenState.get(prompt.getRequestId());
        if (first != null && now - first < window) {
            emitError(ErrorRecords.forPrompt(prompt, ErrorCode.DUPLICATE_REQUEST, "request_id '" + prompt.getRequestId()
                    + "' of tenant '" + prompt.getTenant() + "' was already received " + (now - first)
                    + " ms ago (duplicate window " + window + " ms): the first request is answered; give every new"
                    + " request a new id", now));
            return true;
        }
        seenState.put(prompt.getRequestId(), now);
        duplicateTimers.registerProcessingTimeTimer(VoidNamespace.INSTANCE, now + window);
        return false;
    }

    private void expireSeen(long now) throws Exception {
        Iterator<Map.Entry<String, Long>> it = seenState.iterator();
        while (it.hasNext()) {
            if (it.next().getValue() + config.duplicateWindowMillis() <= now) {
                it.remove();
            }
        }
    }

    /**
     * Whether the current key's document can answer the prompt now; if not, the prompt is answered
     * with an error (the context is a conversation) or waits for the document's last part.
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

    // ---------------- queue ----------------

    /** A prompt of the current key joins the queue (and {@link #PENDING_STATE}); a step is scheduled. */
    private void enqueue(String key, PendingPrompt pending) throws Exception {
        pendingState.add(pending);
        addToQueue(new Queued(key, pending));
        scheduleStep();
    }

    private void addToQueue(Queued q) {
        queue.computeIfAbsent(q.pending().prompt().getTenant(), t -> new ArrayDeque<>()).add(q);
        queued++;
        pendingTotal++;
        maxPendingObserved = Math.max(maxPendingObserved, pendingTotal);
        ProgressStats.PENDING.increment();
    }

    /** The request left {@link #PENDING_STATE} (answered): removes it there, under the current key. */
    private void removePending(PendingPrompt pending) throws Exception {
        List<PendingPrompt> rest = new ArrayList<>();
        boolean removed = false;
        for (PendingPrompt p : orEmpty(pendingState.get())) {
            if (!removed && p.equals(pending)) {
                removed = true;
            } else {
                rest.add(p);
            }
        }
        if (rest.isEmpty()) {
            pendingState.clear();
        } else {
            pendingState.update(rest);
        }
        pendingTotal--;
        ProgressStats.PENDING.decrement();
    }

    /**
     * Per tenant, how many queued requests could start now (at most {@code limit} counted each). A
     * request cannot start while its conversation has a turn in flight, nor before an earlier
     * request of its key that cannot.
     */
    private Map<String, Integer> countAdmissible(int limit) {
        Map<String, Integer> counts = new LinkedHashMap<>();
        for (Map.Entry<String, ArrayDeque<Queued>> tenant : queue.entrySet()) {
            Set<String> blocked = new HashSet<>(busyKeys);
            int n = 0;
            for (Iterator<Queued> it = tenant.getValue().iterator(); it.hasNext() && n < limit; ) {
                if (admissible(it.next(), blocked)) {
                    n++;
                }
            }
            counts.put(tenant.getKey(), n);
        }
        return counts;
    }

    private static boolean admissible(Queued q, Set<String> blocked) {
        if (blocked.contains(q.key())) {
            return false;
        }
        if (q.conversation()) {
            blocked.add(q.key()); // the turns after it wait for its answer
        }
        return true;
    }

    /** Takes the tenant's oldest request that can start now, or null. */
    private Queued takeAdmissible(String tenant) {
        ArrayDeque<Queued> requests = queue.get(tenant);
        if (requests == null) {
            return null;
        }
        Set<String> blocked = new HashSet<>(busyKeys);
        for (Iterator<Queued> it = requests.iterator(); it.hasNext(); ) {
            Queued q = it.next();
            if (admissible(q, blocked)) {
                it.remove();
                if (requests.isEmpty()) {
                    queue.remove(tenant);
                }
                queued--;
                return q;
            }
        }
        return null;
    }

    // ---------------- steps ----------------

    private void scheduleStep() {
        if (!stepScheduled && pendingTotal > 0) {
            stepScheduled = true;
            mailboxExecutor.execute(this::stepMail, "inference step");
        }
    }

    private void stepMail() throws Exception {
        stepScheduled = false;
        runStep();
        scheduleStep();
    }

    /**
     * One step: admit what the planner allows, compute one forward step over the running sequences,
     * sample, and answer every sequence that finished.
     *
     * @return whether anything happened (a request was admitted, answered or computed)
     */
    @VisibleForTesting
    boolean runStep() throws Exception {
        Object previousKey = getCurrentKey();
        try {
            boolean progress = admit();
            if (running.isEmpty()) {
                return progress;
            }
            int[] tokens = planner.allocate(running);
            List<Sequence> stepped = new ArrayList<>();
            List<StepRunner.Chunk> chunks = new ArrayList<>();
            int prefill = 0;
            int decode = 0;
            for (int i = 0; i < tokens.length; i++) {
                if (tokens[i] == 0) {
                    continue;
                }
                Sequence s = running.get(i);
                stepped.add(s);
                chunks.add(new StepRunner.Chunk(s.cache, s.nextTokens(tokens[i]), s.needsLogitsAfter(tokens[i])));
                if (s.decoding()) {
                    decode++;
                } else {
                    prefill += tokens[i];
                }
            }
            long started = System.nanoTime();
            StepRunner.Outcome outcome = runner.step(chunks);
            long nanos = System.nanoTime() - started;
            long now = now();
            List<Sequence> done = new ArrayList<>();
            for (int j = 0; j < chunks.size(); j++) {
                Sequence s = stepped.get(j);
                RuntimeException failure = outcome.failures()[j];
                if (failure == null) {
                    s.computed(chunks.get(j).tokens().length, nanos);
                    float[] logits = outcome.logits()[j];
                    int feed = logits == null ? -1 : s.sample(logits, now);
                    if (feed >= 0) { // a conversation keeps its final token in the cache
                        decode++;
                        failure = runner.step(List.of(new StepRunner.Chunk(s.cache, new int[] {feed}, false)))
                                .failures()[0];
                    }
                }
                if (failure != null) {
                    LOG.warn("request {} failed", s.pending.prompt().getRequestId(), failure);
                    fail(s, "the model failed on this request: " + failure, now);
                    done.add(s);
                } else if (s.finished()) {
                    answer(s, now);
                    done.add(s);
                }
            }
            running.removeAll(done);
            ProgressStats.IN_FLIGHT.add(-done.size());
            metrics.step(prefill + decode, chunks.size(), prefill, decode);
            return true;
        } finally {
            if (previousKey != null) {
                setCurrentKey(previousKey);
            }
        }
    }

    /** Admits queued requests as the planner says; answers those that cannot run with an error. */
    private boolean admit() throws Exception {
        boolean progress = false;
        while (queued > 0 && running.size() < config.maxSequences()) {
            List<String> tenants = planner.admissions(running, countAdmissible(config.maxSequences() - running.size()));
            if (tenants.isEmpty()) {
                break;
            }
            boolean answered = false;
            for (String tenant : tenants) {
                Queued q = takeAdmissible(tenant);
                if (q == null) {
                    continue;
                }
                progress = true;
                Sequence s = prepare(q);
                if (s == null) {
                    answered = true;
                } else {
                    running.add(s);
                    ProgressStats.IN_FLIGHT.increment();
                    if (s.conversation) {
                        busyKeys.add(s.key);
                    }
                }
            }
            if (!answered) {
                break; // otherwise the freed places can take more
            }
        }
        return progress;
    }

    /**
     * Prepares a queued request to run (its cache and prompt tokens), or answers it with an error,
     * or moves a DOCUMENT prompt whose document is being replaced back to waiting (null).
     */
    private Sequence prepare(Queued q) throws Exception {
        setCurrentKey(q.key());
        PendingPrompt pending = q.pending();
        Prompt prompt = pending.prompt();
        long now = now();
        try {
            KvCache cache = null;
            ContextMeta meta = null;
            long baseBytes = 0;
            int[] ids;
            switch (prompt.getMode()) {
                case DOCUMENT -> {
                    if (!documentReady(pending)) {
                        removePending(pending);
                        return null;
                    }
                    // a copy: the prompt's tokens never reach the document's cache
                    cache = loadCache(metaState.value()).copy();
                    ids = tokenizer.encode(prompt.getText(), false);
                }
                case CONVERSATION -> {
                    meta = metaState.value();
                    if (meta != null && meta.kind() != ContextMeta.Kind.CONVERSATION) {
                        return reject(pending, ErrorCode.INVALID_PARAMS, "context '" + prompt.getContextId()
                                + "' is a document: ask about it with mode DOCUMENT, or use another context_id for"
                                + " the conversation", now);
                    }
                    if (meta != null) { // the stored cache itself: the turn's store writes only its dirty blocks
                        cache = loadCache(meta);
                        baseBytes = contextBytes(meta, cache);
                    }
                    ids = cache == null ? tokenizer.encodePrompt(prompt.getText()) : tokenizer.encode(prompt.getText(), false);
                }
                default -> ids = tokenizer.encodePrompt(prompt.getText());
            }
            if (cache == null) {
                cache = newCache();
            }
            int cached = cache.length();
            if (ids.length == 0) {
                return reject(pending, ErrorCode.INVALID_PARAMS, "text encodes to no tokens: send some text", now);
            }
            int room = model.contextLength() - cached - ids.length;
            if (room < 1) {
                return reject(pending, ErrorCode.CONTEXT_OVERFLOW, "prompt has " + ids.length + " tokens after "
                        + cached + " tokens of context, but the model's context window is " + model.contextLength()
                        + " tokens and the answer needs at least one: shorten the prompt"
                        + (cached > 0 ? " or start a new context" : ""), now);
            }
            int maxTokens = Math.min(Math.min(prompt.getMaxTokens(), config.maxTokensCap()), room);
            if (maxTokens < 1) {
                return reject(pending, ErrorCode.INVALID_PARAMS, "max_tokens is " + prompt.getMaxTokens()
                        + ": it must be between 1 and " + config.maxTokensCap(), now);
            }
            SamplingParams params = PromptSampling.params(prompt, maxTokens);
            if (q.conversation() && meta == null && !admitNewContext(prompt.getTenant())) {
                return reject(pending, ErrorCode.CONTEXT_LIMIT,
                        contextLimitMessage(prompt.getTenant(), prompt.getContextId()), now);
            }
            return new Sequence(q.key(), pending, cache, ids, params, meta, baseBytes, tokenizer, now);
        } catch (RuntimeException e) {
            LOG.warn("cannot prepare request {}", prompt.getRequestId(), e);
            return reject(pending, ErrorCode.MODEL_ERROR, "cannot prepare the request: " + e, now);
        }
    }

    private Sequence reject(PendingPrompt pending, ErrorCode code, String message, long now) throws Exception {
        removePending(pending);
        emitError(ErrorRecords.forPrompt(pending.prompt(), code, message, now));
        return null;
    }

    /** Emits a finished sequence's answer; a conversation's cache is stored in the same step. */
    private void answer(Sequence s, long now) throws Exception {
        runner.detach(s.cache, s.conversation);
        setCurrentKey(s.key);
        Prompt prompt = s.pending.prompt();
        if (s.conversation) {
            ContextMeta stored = storeCache(s.cache, s.meta == null
                    ? ContextMeta.conversationStarted(prompt.getTenant(), prompt.getContextId(), s.cache.length(), now)
                    : s.meta.withTurn(s.cache.length(), now), s.meta);
            kvBytes += storedBytes(stored, s.cache) - s.baseBytes;
            busyKeys.remove(s.key);
        }
        removePending(s.pending);
        output.collect(new StreamRecord<>(s.toGeneration(modelName)));
        long arrival = s.pending.arrivalMillis();
        metrics.generation(s.cachedTokens, Math.max(0, s.firstTokenMillis() - arrival), Math.max(0, now - arrival));
    }

    private void fail(Sequence s, String message, long now) throws Exception {
        runner.detach(s.cache, false);
        setCurrentKey(s.key);
        if (s.conversation) {
            busyKeys.remove(s.key);
            if (s.meta == null) {
                contextGone(s.tenant()); // the new conversation was not created
            }
        }
        reject(s.pending, ErrorCode.MODEL_ERROR, message, now);
    }

    // ---------------- end of input ----------------

    /** End of (bounded) input: every queued request runs; prompts waiting for a document get an error. */
    @Override
    public void finish() throws Exception {
        while (pendingTotal > 0) {
            if (!runStep()) {
                throw new IllegalStateException(pendingTotal + " requests are pending but none can run");
            }
        }
        for (String key : keys(WAITING_STATE)) {
            setCurrentKey(key);
            failWaiting("the input ended before document '" + ContextKey.id(key) + "' completed", now());
        }
        super.finish();
    }

    @Override
    public void close() throws Exception {
        if (runner != null) {
            runner.close();
            runner = null;
        }
        if (running != null) {
            ProgressStats.PENDING.add(-pendingTotal);
            ProgressStats.IN_FLIGHT.add(-running.size());
            pendingTotal = 0;
            running.clear();
        }
        super.close();
    }

    // ---------------- for tests ----------------

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
        Map<Integer, byte[]> blocks = new TreeMap<>();
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
        return metrics.kvBlocksWritten.getCount();
    }

    @VisibleForTesting
    int pendingRequests() {
        return pendingTotal;
    }

    @VisibleForTesting
    int runningSequences() {
        return running.size();
    }

    @VisibleForTesting
    int maxPendingObserved() {
        return maxPendingObserved;
    }

    @VisibleForTesting
    long kvStateBytes() {
        return kvBytes;
    }

    @VisibleForTesting
    InferenceMetrics metrics() {
        return metrics;
    }

    @VisibleForTesting
    StepRunner stepRunner() {
        return runner;
    }

    private void emitError(InferenceError.Builder error) {
        InferenceError e = error.build();
        output.collect(OutputTags.ERRORS, new StreamRecord<>(e));
        metrics.error(e.getCode());
    }

    private long now() {
        return getProcessingTimeService().getCurrentProcessingTime();
    }

    private static <T> Iterable<T> orEmpty(Iterable<T> values) {
        return values == null ? List.of() : values;
    }
}
