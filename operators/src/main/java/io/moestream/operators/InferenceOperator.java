package io.moestream.operators;

import io.moestream.runtime.model.DefaultModel;
import io.moestream.runtime.model.Model;
import io.moestream.schemas.ContextReady;
import io.moestream.schemas.Document;
import io.moestream.schemas.Generation;
import io.moestream.schemas.InferenceError;
import io.moestream.schemas.Prompt;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.flink.annotation.VisibleForTesting;
import org.apache.flink.api.common.operators.MailboxExecutor;
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
import org.apache.flink.formats.avro.typeutils.AvroTypeInfo;
import org.apache.flink.runtime.state.VoidNamespace;
import org.apache.flink.runtime.state.VoidNamespaceSerializer;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.KeyedStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.InternalTimer;
import org.apache.flink.streaming.api.operators.Triggerable;
import org.apache.flink.streaming.api.operators.TwoInputStreamOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The inference operator: keyed by {@link ContextKey} (tenant, context), input 1 document parts,
 * input 2 prompts; main output {@link Generation}, side outputs {@link OutputTags#CONTEXTS} and
 * {@link OutputTags#ERRORS}. Every prompt is answered exactly once, by a Generation or an
 * InferenceError. This class only wires its parts to Flink (docs/operators.md):
 * <ul>
 *   <li>{@link ContextStore}: contexts in keyed state (metadata, KV blocks, TTL, bytes, tenant cap);</li>
 *   <li>{@link DocumentIngestion}: document parts, prefilled in chunks inside the steps;</li>
 *   <li>{@link PromptIntake} and {@link DocumentWaits}: duplicates, prompts waiting for a document, admission checks;</li>
 *   <li>{@link RequestQueue}: the tenant-fair queue and the back-pressure count;</li>
 *   <li>{@link StepLoop}: the steps, planned by the runtime's {@code StepPlanner}, computed on the
 *       {@link EngineThread} while the task thread answers, stores and admits;</li>
 *   <li>{@link Outcomes}: every error outcome and its message.</li>
 * </ul>
 *
 * <p><b>Mailbox</b> (like Flink's {@code AsyncWaitOperator}): input only queues work; a step mail
 * ({@link MailboxExecutor#execute}) admits and launches a forward step on the engine thread when it
 * is idle; the engine thread launches each next step itself and hands every computed step back as
 * a mail, which answers, stores and admits; input records, timers and checkpoint barriers run
 * between mails and never wait for a forward step. When {@code maxQueued} items are queued or
 * running, {@code processElement} yields to the mailbox (runs step mails) until there is room,
 * which back-pressures the sources.
 *
 * <p><b>Checkpoints</b>: keyed state is the source of truth, changed only on the task thread. A
 * prompt leaves {@link PromptIntake#PENDING_STATE} only when its answer is emitted (a conversation's
 * cache is written in the same mail) and a part leaves {@link DocumentIngestion#PENDING_STATE} only
 * when it is stored, so a snapshot, even one taken while a step computes, holds every queued and
 * in-flight item; after a restore they run again from the start and seeded sampling regenerates the
 * same text. Outputs carry no timestamps: generation is processing-time work.
 */
public class InferenceOperator extends AbstractStreamOperator<Generation>
        implements TwoInputStreamOperator<Document, Prompt, Generation>, Triggerable<String, VoidNamespace>,
        Keys, Outputs {

    private static final long serialVersionUID = 1L;

    private static final Logger LOG = LoggerFactory.getLogger(InferenceOperator.class);

    // ---------------- configuration ----------------

    private final InferenceConfig config;

    // ---------------- transient runtime ----------------

    private transient MailboxExecutor mailboxExecutor;
    private transient StepRunner runner;
    private transient EngineThread engine;
    private transient InferenceMetrics metrics;
    private transient RequestQueue queue;
    private transient ContextStore store;
    private transient DocumentWaits waits;
    private transient PromptIntake intake;
    private transient DocumentIngestion ingestion;
    private transient StepLoop loop;
    private transient boolean stepScheduled;

    // ---------------- checkpointed state (keyed): held by the parts above ----------------

    private transient MapState<Integer, byte[]> kvBlocks;
    private transient ValueState<ContextMeta> metaState;

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
        Model model = SharedModels.get(InferenceConfig.BUNDLED_MODEL.equals(config.modelPath())
                ? DefaultModel.path() : Path.of(config.modelPath()));
        String modelName = config.modelName() != null ? config.modelName() : model.name();
        queue = new RequestQueue();
        metrics = new InferenceMetrics(getMetricGroup(), queue::queued, queue::pending, queue::maxPendingObserved,
                () -> loop.running(), () -> store.bytes());

        kvBlocks = getPartitionedState(withTtl(new MapStateDescriptor<>(ContextStore.KV_BLOCKS_STATE,
                IntSerializer.INSTANCE, BytePrimitiveArraySerializer.INSTANCE)));
        metaState = getPartitionedState(withTtl(new ValueStateDescriptor<>(ContextStore.META_STATE,
                ContextMetaSerializer.INSTANCE)));
        store = new ContextStore(model, config.kvState(), metaState, kvBlocks, this, metrics);
        runner = RunnerSelection.open(config.backend(), RunnerSelection.deviceIndex(
                getRuntimeContext().getExternalResourceInfos("gpu"), getRuntimeContext().getTaskInfo().getIndexOfThisSubtask()),
                model, config);
        waits = new DocumentWaits(
                getPartitionedState(new ListStateDescriptor<>(DocumentWaits.WAITING_STATE, PendingPromptSerializer.INSTANCE)),
                getInternalTimerService(DocumentWaits.TIMERS, VoidNamespaceSerializer.INSTANCE, this),
                config.documentWaitMillis(), this);
        intake = new PromptIntake(config, model, new PromptIntake.Parts(
                getPartitionedState(new ListStateDescriptor<>(PromptIntake.PENDING_STATE, PendingPromptSerializer.INSTANCE)),
                getPartitionedState(new MapStateDescriptor<>(PromptIntake.SEEN_STATE, StringSerializer.INSTANCE,
                        LongSerializer.INSTANCE)),
                getInternalTimerService(PromptIntake.DUPLICATE_TIMERS, VoidNamespaceSerializer.INSTANCE,
                        new Triggerable<String, VoidNamespace>() {
                            @Override
                            public void onEventTime(InternalTimer<String, VoidNamespace> timer) {}

                            @Override
                            public void onProcessingTime(InternalTimer<String, VoidNamespace> timer) throws Exception {
                                intake.expireSeen(timer.getTimestamp());
                            }
                        }),
                waits, queue, store, this));
        ingestion = new DocumentIngestion(config, model, modelName, new DocumentIngestion.Parts(
                getPartitionedState(new ListStateDescriptor<>(DocumentIngestion.PENDING_STATE, PendingPartSerializer.INSTANCE)),
                queue, store, waits, intake, this));
        engine = new EngineThread(runner, "moestream-engine-" + getRuntimeContext().getTaskInfo().getIndexOfThisSubtask());
        loop = new StepLoop(config, modelName,
                new StepLoop.Parts(runner, engine, queue, intake, ingestion, store, this, this, metrics),
                done -> mailboxExecutor.execute(() -> stepDone(done), "inference step done"));
        restore();
    }

    /**
     * Rebuilds the queue from the pending prompts and parts in state (oldest first), and the context
     * byte count and tenant counts from the stored contexts' metadata.
     */
    private void restore() throws Exception {
        List<RequestQueue.Queued> restored = new ArrayList<>();
        for (String key : keys(DocumentIngestion.PENDING_STATE)) {
            select(key);
            ingestion.restore(key, restored);
        }
        for (String key : keys(PromptIntake.PENDING_STATE)) {
            select(key);
            intake.restore(key, restored);
        }
        restored.sort(Comparator.comparingLong(RequestQueue.Queued::arrivalMillis));
        restored.forEach(queue::add);
        store.restore();
        if (!restored.isEmpty()) {
            LOG.info("{} queued or in-flight prompts and document parts restored; they run again from the start",
                    restored.size());
            scheduleStep();
        }
    }

    /** Context state expires after {@code ttlMillis} without being read or written; 0 = never. */
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

    // ---------------- input ----------------

    @Override
    public void processElement1(StreamRecord<Document> element) throws Exception {
        awaitRoom();
        ingestion.receive((String) getCurrentKey(), element.getValue(), now());
        scheduleStep();
    }

    @Override
    public void processElement2(StreamRecord<Prompt> element) throws Exception {
        awaitRoom();
        intake.receive((String) getCurrentKey(), element.getValue(), now());
        scheduleStep();
    }

    /** Back-pressure: while {@code maxQueued} items are queued or running, runs steps instead of taking input. */
    private void awaitRoom() throws Exception {
        if (queue.pending() < config.maxQueued()) {
            return;
        }
        Object key = getCurrentKey();
        while (queue.pending() >= config.maxQueued()) {
            scheduleStep();
            mailboxExecutor.yield();
        }
        setCurrentKey(key); // a step switches keys
    }

    /** A document-wait deadline passed for the current key. */
    @Override
    public void onProcessingTime(InternalTimer<String, VoidNamespace> timer) throws Exception {
        waits.expire(timer.getTimestamp(), store.meta());
    }

    @Override
    public void onEventTime(InternalTimer<String, VoidNamespace> timer) {}

    // ---------------- steps ----------------

    /** Schedules a step mail when work is pending and the engine thread is idle (otherwise it launches the next step). */
    private void scheduleStep() {
        if (!stepScheduled && !loop.inFlight() && queue.pending() > 0) {
            stepScheduled = true;
            mailboxExecutor.execute(this::stepMail, "inference step");
        }
    }

    private void stepMail() throws Exception {
        stepScheduled = false;
        loopMail(loop::step);
    }

    /** A step was computed on the engine thread (and the next launched): answers, stores and admission follow. */
    private void stepDone(StepLoop.Done done) throws Exception {
        loopMail(() -> loop.completed(done));
    }

    private void loopMail(LoopAction action) throws Exception {
        long started = System.nanoTime();
        keepingKey(action);
        metrics.actionTook(System.nanoTime() - started);
        scheduleStep();
    }

    private interface LoopAction {
        void run() throws Exception;
    }

    /** Runs a step-loop action, which switches keys, and restores the current key. */
    private void keepingKey(LoopAction action) throws Exception {
        Object previousKey = getCurrentKey();
        try {
            action.run();
        } finally {
            if (previousKey != null) {
                setCurrentKey(previousKey);
            }
        }
    }

    /** End of (bounded) input: every queued item runs; prompts waiting for a document get an error. */
    @Override
    public void finish() throws Exception {
        keepingKey(loop::drain);
        for (String key : keys(DocumentWaits.WAITING_STATE)) {
            select(key);
            waits.fail(Outcomes.inputEnded(ContextKey.id(key)), now());
        }
        super.finish();
    }

    @Override
    public void close() throws Exception {
        if (loop != null) {
            loop.stop();
        }
        if (engine != null) {
            engine.close(); // waits for the step in flight: the runner is closed only after it
            engine = null;
        }
        if (runner != null) {
            runner.close();
            runner = null;
        }
        if (loop != null) {
            loop.clear();
            queue.clear();
        }
        super.close();
    }

    // ---------------- Keys and Outputs, for the parts ----------------

    @Override
    public void select(String key) {
        setCurrentKey(key);
    }

    @Override
    public String current() {
        return (String) getCurrentKey();
    }

    @Override
    public List<String> keys(String state) throws Exception {
        try (Stream<String> stream = this.<String>getKeyedStateBackend().getKeys(state, VoidNamespace.INSTANCE)) {
            return stream.collect(Collectors.toList());
        }
    }

    @Override
    public long now() {
        return getProcessingTimeService().getCurrentProcessingTime();
    }

    @Override
    public void generation(Generation generation) {
        output.collect(new StreamRecord<>(generation));
    }

    @Override
    public void contextReady(ContextReady ready) {
        output.collect(OutputTags.CONTEXTS, new StreamRecord<>(ready));
        metrics.context();
    }

    @Override
    public void error(InferenceError.Builder error) {
        InferenceError e = error.build();
        output.collect(OutputTags.ERRORS, new StreamRecord<>(e));
        metrics.error(e.getCode());
    }

    // ---------------- for tests ----------------

    /** The stored cache of a context, as a whole-cache array; null if none. */
    @VisibleForTesting
    byte[] storedCache(String key) throws Exception {
        select(key);
        ContextMeta meta = store.meta();
        return meta == null ? null : store.load(meta).toBytes();
    }

    /** The stored KV blocks of a context (index to bytes). */
    @VisibleForTesting
    Map<Integer, byte[]> storedBlocks(String key) throws Exception {
        select(key);
        Map<Integer, byte[]> blocks = new TreeMap<>();
        for (Map.Entry<Integer, byte[]> e : kvBlocks.entries()) {
            blocks.put(e.getKey(), e.getValue());
        }
        return blocks;
    }

    @VisibleForTesting
    ContextMeta storedMeta(String key) throws Exception {
        select(key);
        return store.meta();
    }

    /** Overwrites one stored KV block of a context (tests of damaged state). */
    @VisibleForTesting
    void putStoredBlock(String key, int index, byte[] bytes) throws Exception {
        select(key);
        kvBlocks.put(index, bytes);
    }

    @VisibleForTesting
    long kvBlocksWritten() {
        return metrics.kvBlocksWritten.getCount();
    }

    @VisibleForTesting
    int pendingRequests() {
        return queue.pending();
    }

    @VisibleForTesting
    int runningSequences() {
        return loop.running();
    }

    /** Whether a step is being computed on the engine thread (its completion is a mail still to come). */
    @VisibleForTesting
    boolean stepInFlight() {
        return loop.inFlight();
    }

    /** Steps the engine thread has computed, including one the task thread has not handled yet. */
    @VisibleForTesting
    long stepsComputed() {
        return loop.computedSteps();
    }

    @VisibleForTesting
    int maxPendingObserved() {
        return queue.maxPendingObserved();
    }

    @VisibleForTesting
    long kvStateBytes() {
        return store.bytes();
    }

    @VisibleForTesting
    InferenceMetrics metrics() {
        return metrics;
    }

    @VisibleForTesting
    StepRunner stepRunner() {
        return runner;
    }
}
