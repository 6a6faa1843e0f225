package io.moestream.operators;

import io.moestream.runtime.model.Engine;
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
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.flink.annotation.VisibleForTesting;
import org.apache.flink.api.common.operators.MailboxExecutor;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.common.typeutils.base.LongSerializer;
import org.apache.flink.api.common.typeutils.base.StringSerializer;
import org.apache.flink.api.common.typeutils.base.array.BytePrimitiveArraySerializer;
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

    /** KV-cache of a context: {@link KvCache#toBytes()}. */
    public static final String KV_STATE = "kv-cache";
    /** {@link ContextMeta} of a context. */
    public static final String META_STATE = "context-meta";
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

    // ---------------- checkpointed state (keyed) ----------------

    private transient ValueState<byte[]> kvState;
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
        model = SharedModels.get(Path.of(config.modelPath()));
        tokenizer = model.tokenizer();
        modelName = config.modelName() != null ? config.modelName() : model.name();
        runner = StepRunner.batched(new Engine(model));
        planner = new StepPlanner(config.tokenBudget(), config.maxSequences(), config.tenantShare());
        queue = new LinkedHashMap<>();
        running = new ArrayList<>();
        busyKeys = new HashSet<>();

        kvState = getPartitionedState(new ValueStateDescriptor<>(KV_STATE, BytePrimitiveArraySerializer.INSTANCE));
        metaState = getPartitionedState(new ValueStateDescriptor<>(META_STATE, ContextMetaSerializer.INSTANCE));
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

    /** Rebuilds the queue from {@link #PENDING_STATE} (oldest first) and the KV-bytes sum from {@link #KV_STATE}. */
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
        for (String key : keys(KV_STATE)) {
            setCurrentKey(key);
            byte[] bytes = kvState.value();
            kvBytes += bytes == null ? 0 : bytes.length;
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
        byte[] stored = meta == null ? null : kvState.value();
        long storedBytes = stored == null ? 0 : stored.length;
        KvCache cache;
        int[] ids;
        try {
            cache = part.getPart() == 0 ? model.newCache() : model.cacheFromBytes(stored);
            ids = part.getPart() == 0 ? tokenizer.encodePrompt(part.getText()) : tokenizer.encode(part.getText(), false);
        } catch (RuntimeException e) {
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
            kvState.clear();
            metaState.clear();
            kvBytes -= storedBytes;
            failWaiting("document '" + part.getDocumentId() + "' was rejected: " + message, now);
            return;
        }

        long started = System.nanoTime();
        try {
            if (ids.length > 0) {
                runner.step(List.of(new StepRunner.Chunk(cache, ids, false))).throwFailure();
                metrics.prefill(ids.length);
            }
        } catch (RuntimeException e) {
            LOG.warn("prefill of document part failed", e);
            emitError(ErrorRecords.forDocument(part, ErrorCode.MODEL_ERROR, "prefill of part " + part.getPart()
                    + " of document '" + part.getDocumentId() + "' failed: " + e + "; the part can be sent again", now));
            return;
        }
        long prefillNanos = System.nanoTime() - started;

        byte[] bytes = cache.toBytes();
        kvState.update(bytes);
        kvBytes += bytes.length - storedBytes;
        meta = part.getPart() == 0
                ? ContextMeta.documentStarted(part.getTenant(), part.getDocumentId(), cache.length(), prefillNanos,
                        part.getLast(), now)
                : meta.withPart(cache.length(), prefillNanos, part.getLast(), now);
        metaState.update(meta);

        if (meta.complete()) {
            output.collect(OutputTags.CONTEXTS, new StreamRecord<>(contextReady(meta, bytes.length)));
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
            byte[] base = null;
            ContextMeta meta = null;
            int[] ids;
            switch (prompt.getMode()) {
                case DOCUMENT -> {
                    if (!documentReady(pending)) {
                        removePending(pending);
                        return null;
                    }
                    base = kvState.value();
                    ids = tokenizer.encode(prompt.getText(), false);
                }
                case CONVERSATION -> {
                    meta = metaState.value();
                    if (meta != null && meta.kind() != ContextMeta.Kind.CONVERSATION) {
                        return reject(pending, ErrorCode.INVALID_PARAMS, "context '" + prompt.getContextId()
                                + "' is a document: ask about it with mode DOCUMENT, or use another context_id for"
                                + " the conversation", now);
                    }
                    base = meta == null ? null : kvState.value();
                    ids = base == null ? tokenizer.encodePrompt(prompt.getText()) : tokenizer.encode(prompt.getText(), false);
                }
                default -> ids = tokenizer.encodePrompt(prompt.getText());
            }
            KvCache cache = base == null ? model.newCache() : model.cacheFromBytes(base);
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
            return new Sequence(q.key(), pending, cache, ids, params, meta, base == null ? 0 : base.length, tokenizer, now);
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
        setCurrentKey(s.key);
        Prompt prompt = s.pending.prompt();
        if (s.conversation) {
            byte[] bytes = s.cache.toBytes();
            kvState.update(bytes);
            kvBytes += bytes.length - s.baseBytes;
            metaState.update(s.meta == null
                    ? ContextMeta.conversationStarted(prompt.getTenant(), prompt.getContextId(), s.cache.length(), now)
                    : s.meta.withTurn(s.cache.length(), now));
            busyKeys.remove(s.key);
        }
        removePending(s.pending);
        output.collect(new StreamRecord<>(s.toGeneration(modelName)));
        long arrival = s.pending.arrivalMillis();
        metrics.generation(s.cachedTokens, Math.max(0, s.firstTokenMillis() - arrival), Math.max(0, now - arrival));
    }

    private void fail(Sequence s, String message, long now) throws Exception {
        setCurrentKey(s.key);
        if (s.conversation) {
            busyKeys.remove(s.key);
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
        if (running != null) {
            ProgressStats.PENDING.add(-pendingTotal);
            ProgressStats.IN_FLIGHT.add(-running.size());
            pendingTotal = 0;
            running.clear();
        }
        super.close();
    }

    // ---------------- for tests ----------------

    @VisibleForTesting
    byte[] storedCache(String key) throws Exception {
        setCurrentKey(key);
        return kvState.value();
    }

    @VisibleForTesting
    ContextMeta storedMeta(String key) throws Exception {
        setCurrentKey(key);
        return metaState.value();
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
