package io.moestream.operators;

import static io.moestream.operators.OperatorHarness.ingest;
import static io.moestream.operators.OperatorHarness.drain;
import static io.moestream.operators.OperatorHarness.harness;
import static io.moestream.operators.OperatorHarness.open;
import static io.moestream.operators.OperatorHarness.operator;
import static io.moestream.operators.OperatorHarness.side;

import static io.moestream.operators.TestRecords.askDocument;
import static io.moestream.operators.TestRecords.part;
import static io.moestream.operators.TestRecords.turn;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.moestream.runtime.backend.BackendUnavailableException;
import io.moestream.runtime.backend.Backends;
import io.moestream.schemas.ContextReady;
import io.moestream.schemas.Document;
import io.moestream.schemas.Generation;
import io.moestream.schemas.InferenceError;
import io.moestream.schemas.Prompt;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Collectors;
import org.apache.flink.api.common.externalresource.ExternalResourceInfo;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.KeyedTwoInputStreamOperatorTestHarness;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.LogEvent;
import org.apache.logging.log4j.core.LoggerContext;
import org.apache.logging.log4j.core.appender.AbstractAppender;
import org.apache.logging.log4j.core.config.LoggerConfig;
import org.apache.logging.log4j.core.config.Property;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The operator's backend path ({@link BackendStepRunner}, KV in the GPU's pool, written back to
 * keyed state; {@code moestream.backend=cuda}, skipped without a GPU) against the CPU engine: the
 * same greedy answers for a document and a two-turn conversation, across a snapshot and restore
 * (also from one path to the other), with the default int8 blocks; and the backend choice itself.
 */
class BackendRunnerTest {

    private static final String GPU = "cuda";

    /** Why the cuda backend cannot run here, or null when it can. */
    private static String noGpu() {
        return Backends.providers().stream().filter(p -> p.name().equals(GPU)).findFirst()
                .map(p -> p.unavailableReason(0)).orElse("the cuda backend (moestream-cuda) is not on the class path");
    }

    private static void assumeGpu() {
        String why = noGpu();
        assumeTrue(why == null, () -> "needs a GPU: " + why);
    }

    private static final String DOC = ("The Apache License grants a copyright license to reproduce the Work, to prepare"
            + " derivative works, to publicly display and perform, and to distribute the Work. ").repeat(2);
    private static final String DOC_TAIL = "It also grants a patent license from each contributor.";

    private KeyedTwoInputStreamOperatorTestHarness<String, Document, Prompt, Generation> harness;

    @AfterEach
    void close() throws Exception {
        if (harness != null) {
            harness.close();
        }
    }

    /** What a run produced: every answer's tokens and text, the stored contexts, and the ContextReady bytes. */
    private record Run(Map<String, List<Integer>> tokens, Map<String, String> texts, Map<String, List<Integer>> storedIds,
            List<Long> kvBytes, List<InferenceError> errors, long blocksWritten) {}

    /**
     * A document in two parts, a conversation turn and a question, then (optionally after a snapshot
     * and a restore with {@code restoreBackend}) the second turn and another question.
     */
    private Run run(String backend, String restoreBackend) throws Exception {
        InferenceConfig config = Reference.config().withBackend(backend);
        harness = open(config);
        ingest(harness, part("acme", "doc", 0, false, DOC));
        ingest(harness, part("acme", "doc", 1, true, DOC_TAIL));
        harness.processElement2(new StreamRecord<>(turn("acme", "t1", "chat", DOC + " What does it grant?", 8)));
        harness.processElement2(new StreamRecord<>(askDocument("acme", "q1", "doc", " Which license is it?", 8)));
        drain(harness);
        List<Generation> out = new ArrayList<>(harness.extractOutputValues());
        List<ContextReady> ready = new ArrayList<>(side(harness, OutputTags.CONTEXTS));
        List<InferenceError> errors = new ArrayList<>(side(harness, OutputTags.ERRORS));
        assertNothingResident();
        if (restoreBackend != null) {
            OperatorSubtaskState snapshot = harness.snapshot(1L, 10L);
            harness.close();
            harness = harness(config.withBackend(restoreBackend));
            harness.initializeState(snapshot);
            harness.open();
        }
        harness.processElement2(new StreamRecord<>(turn("acme", "t2", "chat", " And what about patents?", 8)));
        harness.processElement2(new StreamRecord<>(askDocument("acme", "q2", "doc", " Who grants the patent license?", 8)));
        drain(harness);
        if (restoreBackend != null) {
            out.addAll(harness.extractOutputValues());
            errors.addAll(side(harness, OutputTags.ERRORS));
        } else {
            out = harness.extractOutputValues();
            errors = side(harness, OutputTags.ERRORS);
        }
        assertNothingResident();
        Map<String, List<Integer>> tokens = new TreeMap<>();
        Map<String, String> texts = new TreeMap<>();
        for (Generation g : out) {
            tokens.put(g.getRequestId(), g.getTokenIds());
            texts.put(g.getRequestId(), g.getText());
        }
        Map<String, List<Integer>> stored = new TreeMap<>();
        for (String id : List.of("doc", "chat")) {
            stored.put(id, operator(harness).storedMeta(ContextKey.of("acme", id)).tokenIds().length == 0 ? List.of()
                    : java.util.Arrays.stream(operator(harness).storedMeta(ContextKey.of("acme", id)).tokenIds()).boxed().toList());
        }
        return new Run(tokens, texts, stored, ready.stream().map(ContextReady::getKvBytes).toList(), errors,
                operator(harness).kvBlocksWritten());
    }

    private void assertNothingResident() {
        if (operator(harness).stepRunner() instanceof BackendStepRunner b) {
            assertThat(b.residentCaches()).as("caches left in the backend pool").isZero();
        }
    }

    @Test
    void theBackendPathAnswersAsTheEngineAndStoresTheSameContexts() throws Exception {
        assumeGpu();
        Run engine = run("cpu", null);
        harness.close();
        Run backend = run(GPU, null);
        assertThat(operator(harness).stepRunner()).isInstanceOf(BackendStepRunner.class);
        assertThat(((BackendStepRunner) operator(harness).stepRunner()).engineChunks()).as("chunks that fell back to the engine").isZero();
        assertThat(engine.errors()).isEmpty();
        assertThat(backend.errors()).isEmpty();
        assertThat(engine.tokens()).containsOnlyKeys("t1", "q1", "t2", "q2");
        assertThat(backend.tokens()).isEqualTo(engine.tokens());
        assertThat(backend.texts()).isEqualTo(engine.texts());
        assertThat(backend.storedIds()).isEqualTo(engine.storedIds());
        assertThat(backend.storedIds().get("chat")).hasSizeGreaterThan(64); // sealed int8 blocks written back
        assertThat(backend.kvBytes()).isEqualTo(engine.kvBytes());
        assertThat(backend.blocksWritten()).as("KV blocks put into state (only dirty ones)").isEqualTo(engine.blocksWritten());
    }

    @Test
    void aContextRestoredFromASnapshotAnswersWithTheSameText() throws Exception {
        assumeGpu();
        Run uninterrupted = run("cpu", null);
        harness.close();
        // written by the backend path, restored into it, and into the engine (and the other way round)
        Run backendToBackend = run(GPU, GPU);
        harness.close();
        Run backendToEngine = run(GPU, "cpu");
        harness.close();
        Run engineToBackend = run("cpu", GPU);
        for (Run r : List.of(backendToBackend, backendToEngine, engineToBackend)) {
            assertThat(r.errors()).isEmpty();
            assertThat(r.tokens()).isEqualTo(uninterrupted.tokens());
            assertThat(r.texts()).isEqualTo(uninterrupted.texts());
            assertThat(r.storedIds()).isEqualTo(uninterrupted.storedIds());
        }
    }

    @Test
    void aContextStoredWithAnotherCodecRunsOnTheEngineInTheSameStep() throws Exception {
        assumeGpu();
        KvStateConfig f32 = KvStateConfig.defaults().withCodec("f32");
        harness = open(Reference.config().withKvState(f32).withBackend("cpu"));
        ingest(harness, part("acme", "doc", 0, true, DOC));
        OperatorSubtaskState snapshot = harness.snapshot(1L, 10L);
        harness.close();
        // restored where the pool holds int8 blocks: the f32 document cannot go there, a new conversation can
        harness = harness(Reference.config().withBackend(GPU));
        harness.initializeState(snapshot);
        harness.open();
        harness.processElement2(new StreamRecord<>(askDocument("acme", "q", "doc", " Which license is it?", 6)));
        harness.processElement2(new StreamRecord<>(turn("acme", "t", "chat", "Hello there.", 6)));
        drain(harness);
        BackendStepRunner runner = (BackendStepRunner) operator(harness).stepRunner();
        assertThat(runner.engineChunks()).isPositive();
        assertThat(runner.residentCaches()).isZero();
        Reference ref = Reference.get();
        io.moestream.runtime.model.KvCache doc = ref.model.newCache(f32.kvCodec(), f32.blockTokens());
        ref.engine.forward(doc, ref.tokenizer.encodePrompt(DOC));
        Map<String, List<Integer>> answers = harness.extractOutputValues().stream()
                .collect(Collectors.toMap(Generation::getRequestId, Generation::getTokenIds));
        assertThat(answers.get("q")).isEqualTo(Reference.ids(ref.ask(doc, " Which license is it?", 6)));
        assertThat(answers.get("t")).isEqualTo(Reference.ids(ref.run(ref.newCache(), ref.tokenizer.encodePrompt("Hello there."),
                io.moestream.runtime.sampler.SamplingParams.greedy(6), true)));
    }

    @Test
    void forcedCudaWithoutAGpuFailsTheJobSayingWhy() throws Exception {
        assumeTrue(noGpu() != null, "a GPU is present");
        harness = harness(Reference.config().withBackend("cuda"));
        assertThatThrownBy(() -> harness.open())
                .satisfies(e -> assertThat(rootOfType(e, BackendUnavailableException.class)).isNotNull()
                        .extracting(Throwable::getMessage).asString().startsWith("backend=cuda "));
        harness = null;
    }

    @Test
    void autoWithoutAGpuBackendRunsTheEngineWithOneInfoLine() throws Exception {
        assumeTrue(noGpu() != null, "a GPU is present");
        List<String> lines = new ArrayList<>();
        AbstractAppender capture = new AbstractAppender("capture", null, null, true, Property.EMPTY_ARRAY) {
            @Override
            public void append(LogEvent event) {
                if (event.getLevel() == Level.INFO) {
                    lines.add(event.getLoggerName() + ": " + event.getMessage().getFormattedMessage());
                }
            }
        };
        capture.start();
        LoggerContext ctx = (LoggerContext) LogManager.getContext(false);
        LoggerConfig moestream = ctx.getConfiguration().getLoggerConfig("io.moestream");
        moestream.addAppender(capture, Level.INFO, null);
        ctx.updateLoggers();
        try {
            harness = open(Reference.config()); // the default: auto
        } finally {
            moestream.removeAppender("capture");
            ctx.updateLoggers();
        }
        assertThat(operator(harness).stepRunner()).isInstanceOf(StepRunner.BatchedStepRunner.class);
        assertThat(lines).hasSize(1);
        assertThat(lines.get(0)).contains("backend=auto: using the CPU engine");
    }

    @Test
    void subtasksAreSpreadOverTheSortedGpuIndices() {
        List<ExternalResourceInfo> gpus = List.of(gpu("3"), gpu("1"), gpu("2"));
        assertThat(RunnerSelection.deviceIndex(gpus, 0)).isEqualTo(1);
        assertThat(RunnerSelection.deviceIndex(gpus, 1)).isEqualTo(2);
        assertThat(RunnerSelection.deviceIndex(gpus, 5)).isEqualTo(3);
        assertThat(RunnerSelection.deviceIndex(Set.of(), 4)).isZero();
    }

    private static ExternalResourceInfo gpu(String index) {
        return new ExternalResourceInfo() {
            @Override
            public Optional<String> getProperty(String key) {
                return key.equals("index") ? Optional.of(index) : Optional.empty();
            }

            @Override
            public java.util.Collection<String> getKeys() {
                return List.of("index");
            }
        };
    }

    // ---------------- helpers ----------------

    private static <T extends Throwable> T rootOfType(Throwable e, Class<T> type) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (type.isInstance(t)) {
                return type.cast(t);
            }
        }
        return null;
    }

}
