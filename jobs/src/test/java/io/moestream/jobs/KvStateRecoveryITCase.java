package io.moestream.jobs;

import io.moestream.jobs.KafkaTestClient.Output;
import io.moestream.jobs.kafka.LocalKafka;
import io.moestream.schemas.ContextReady;
import io.moestream.schemas.Generation;
import io.moestream.schemas.Prompt;
import io.moestream.schemas.PromptMode;
import org.apache.avro.specific.SpecificRecord;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichMapFunction;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.JobManagerOptions;
import org.apache.flink.configuration.RestartStrategyOptions;
import org.apache.flink.configuration.StateRecoveryOptions;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.core.execution.SavepointFormatType;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import static io.moestream.jobs.KafkaTestClient.cacheAfter;
import static io.moestream.jobs.KafkaTestClient.document;
import static io.moestream.jobs.KafkaTestClient.prompt;
import static io.moestream.jobs.KafkaTestClient.sampled;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * The KV-cache as keyed state, end to end (real broker, the job on a MiniCluster, exactly-once
 * sinks read with {@code read_committed}): contexts survive a task failure and a rescale from a
 * savepoint, and answers after a restore are the answers a failure-free run gives.
 *
 * <p>These tests only look at the job from the outside (Kafka records), so they hold for any
 * layout of the cache in state (uncompressed today, compressed blocks later).
 */
class KvStateRecoveryITCase {

    private static final Duration TIMEOUT = Duration.ofSeconds(180);

    private static LocalKafka kafka;

    @BeforeAll
    static void startKafka() throws Exception {
        kafka = LocalKafka.start(0);
    }

    @AfterAll
    static void stopKafka() {
        if (kafka != null) {
            kafka.close();
        }
    }

    /**
     * (a) a document is prefilled once and answers questions before and after a task failure from
     * its cache; (c) a conversation whose turns span the failure says exactly what the same
     * conversation (same texts and seeds) said without a failure.
     */
    @Test
    void contextsSurviveATaskFailureAndAnswersMatchAFailureFreeRun() throws Exception {
        KafkaTestClient topics = KafkaTestClient.fresh(kafka, "failover", 2);
        FailOnce.reset();
        JobClient job = start(topics.jobOptions(), 2, null, true);
        try {
            // the control conversation "calm" runs all its turns before the failure
            topics.send(
                    document("acme", "manual", 0, false, "The list type is a mutable sequence. "),
                    document("acme", "manual", 1, true, "Lists support append, insert and sort."),
                    prompt("q1", "acme", "manual", PromptMode.DOCUMENT, "To add an item,"),
                    turn("calm-1", "calm", 1), turn("calm-2", "calm", 2), turn("calm-3", "calm", 3),
                    turn("storm-1", "storm", 1));
            // a committed ContextReady means a completed checkpoint holds the document's cache
            Output before = topics.readCommitted(
                    o -> o.contexts.size() == 1 && o.answered("q1", "calm-1", "calm-2", "calm-3", "storm-1"),
                    TIMEOUT, Duration.ZERO);
            assertThat(before.contexts).as("output so far: %s", before).hasSize(1);

            // turn 2 of "storm" is on its way when a task fails
            topics.send(turn("storm-2", "storm", 2));
            FailOnce.FAIL.set(true);
            awaitRestart();
            topics.send(prompt("q2", "acme", "manual", PromptMode.DOCUMENT, "Sorting a list"), turn("storm-3", "storm", 3));

            Output out = topics.readCommitted(o -> o.answered("q1", "q2", "storm-1", "storm-2", "storm-3"),
                    TIMEOUT, Duration.ofSeconds(3));
            assertThat(FailOnce.FAILURES).hasValue(1);
            for (String id : List.of("q1", "q2", "calm-1", "calm-2", "calm-3", "storm-1", "storm-2", "storm-3")) {
                assertThat(out.answers(id)).as("answers to %s; output: %s", id, out).hasSize(1);
            }
            assertThat(out.errors).isEmpty();

            // (a) the question after the restore reads the whole document from the cache ...
            ContextReady manual = out.ready("acme", "manual").get(0);
            assertThat(out.answer("q1").getUsage().getCachedTokens()).isEqualTo(manual.getTokens());
            assertThat(out.answer("q2").getUsage().getCachedTokens()).isEqualTo(manual.getTokens());
            // ... and the document was prefilled once: no attempt, not even an aborted one, made it ready again
            Output everything = topics.read(false, o -> false, Duration.ofSeconds(2));
            assertThat(everything.ready("acme", "manual")).as("ContextReady records, aborted ones included").hasSize(1);

            // (c) the conversation that lived through the failure: intact cache, same text as without it
            assertThat(out.answer("storm-2").getUsage().getCachedTokens()).isEqualTo(cacheAfter(out.answer("storm-1")));
            assertThat(out.answer("storm-3").getUsage().getCachedTokens()).isEqualTo(cacheAfter(out.answer("storm-2")));
            for (int i = 1; i <= 3; i++) {
                Generation calm = out.answer("calm-" + i);
                Generation storm = out.answer("storm-" + i);
                assertThat(storm.getText()).as("turn %d", i).isEqualTo(calm.getText());
                assertThat(storm.getTokenIds()).as("turn %d", i).isEqualTo(calm.getTokenIds());
                assertThat(storm.getUsage()).as("turn %d", i).isEqualTo(calm.getUsage());
            }
        } finally {
            job.cancel().get(30, TimeUnit.SECONDS);
        }
    }

    /** (b) stop with a savepoint at parallelism 2, resume at 1, then at 3: every context answers from its cache. */
    @Test
    void everyContextAnswersFromItsCacheAfterRescalingFromASavepoint(@TempDir Path savepoints) throws Exception {
        KafkaTestClient topics = KafkaTestClient.fresh(kafka, "rescale", 2);
        Configuration options = topics.jobOptions();
        List<String> documents = List.of("d0", "d1", "d2", "d3", "d4", "d5");
        List<String> chats = List.of("c0", "c1", "c2", "c3");

        JobClient job = start(options, 2, null, false);
        List<SpecificRecord> first = new ArrayList<>();
        for (int i = 0; i < documents.size(); i++) {
            String tenant = "tenant" + (i % 2);
            first.add(document(tenant, documents.get(i), 0, true, "Document " + i + " says that tuples are immutable."));
        }
        for (int i = 0; i < chats.size(); i++) {
            first.add(prompt(chats.get(i) + "-1", "tenant" + (i % 2), chats.get(i), PromptMode.CONVERSATION, "Hello, module " + i));
        }
        topics.send(first.toArray(SpecificRecord[]::new));
        Output ingested = topics.readCommitted(o -> o.contexts.size() == documents.size()
                && o.answered(chats.stream().map(c -> c + "-1").toArray(String[]::new)), TIMEOUT, Duration.ZERO);
        Map<String, Integer> documentTokens = new LinkedHashMap<>();
        for (ContextReady ready : ingested.contexts) {
            documentTokens.put(ready.getContextId(), ready.getTokens());
        }
        assertThat(documentTokens).containsOnlyKeys(documents);
        Map<String, Generation> lastTurn = new LinkedHashMap<>();
        for (String chat : chats) {
            lastTurn.put(chat, ingested.answer(chat + "-1"));
        }

        int turn = 1;
        for (int parallelism : new int[] {1, 3}) {
            String savepoint = job.stopWithSavepoint(false, savepoints.toUri().toString(), SavepointFormatType.CANONICAL)
                    .get(120, TimeUnit.SECONDS);
            job = start(options, parallelism, savepoint, false);
            turn++;
            List<Prompt> questions = new ArrayList<>();
            for (int i = 0; i < documents.size(); i++) {
                questions.add(prompt("p" + parallelism + "-" + documents.get(i), "tenant" + (i % 2), documents.get(i),
                        PromptMode.DOCUMENT, "Tuples"));
            }
            for (int i = 0; i < chats.size(); i++) {
                questions.add(prompt(chats.get(i) + "-" + turn, "tenant" + (i % 2), chats.get(i),
                        PromptMode.CONVERSATION, " and then"));
            }
            topics.send(questions.toArray(SpecificRecord[]::new));
            int t = turn;
            String[] ids = questions.stream().map(Prompt::getRequestId).toArray(String[]::new);
            Output out = topics.readCommitted(o -> o.answered(ids), TIMEOUT, Duration.ofSeconds(2));
            assertThat(out.errors).as("errors at parallelism %d", parallelism).isEmpty();
            for (String document : documents) {
                assertThat(out.answer("p" + parallelism + "-" + document).getUsage().getCachedTokens())
                        .as("cached tokens of %s at parallelism %d", document, parallelism)
                        .isEqualTo(documentTokens.get(document));
            }
            for (String chat : chats) {
                Generation answer = out.answer(chat + "-" + t);
                assertThat(answer.getUsage().getCachedTokens())
                        .as("cached tokens of %s turn %d at parallelism %d", chat, t, parallelism)
                        .isEqualTo(cacheAfter(lastTurn.get(chat)));
                lastTurn.put(chat, answer);
            }
            // documents were ingested once, before the first savepoint
            assertThat(out.contexts).hasSize(documents.size());
        }
        job.cancel().get(30, TimeUnit.SECONDS);
    }

    // ---------------- helpers ----------------

    /** A sampled CONVERSATION turn; turn n has the same text and seed in every conversation. */
    private static Prompt turn(String requestId, String chat, int n) {
        String[] texts = {"The import statement", " and then the module", " so that"};
        return sampled(requestId, "acme", chat, PromptMode.CONVERSATION, texts[n - 1], 1000L + n);
    }

    /**
     * The job on its own MiniCluster; with {@code failureInjector} a separate source → {@link FailOnce}
     * pipeline joins it, and any task failure restarts the whole job from its latest checkpoint.
     */
    private static JobClient start(Configuration options, int parallelism, String savepoint, boolean failureInjector)
            throws Exception {
        Configuration conf = new Configuration(options);
        conf.set(JobOptions.PARALLELISM, parallelism);
        conf.set(JobOptions.STEP_MAX_SEQUENCES, 4);
        conf.set(RestartStrategyOptions.RESTART_STRATEGY, "fixed-delay");
        conf.set(RestartStrategyOptions.RESTART_STRATEGY_FIXED_DELAY_ATTEMPTS, 3);
        conf.set(RestartStrategyOptions.RESTART_STRATEGY_FIXED_DELAY_DELAY, Duration.ofMillis(200));
        // the injector is a pipeline of its own: "full" makes its failure restart every task, as a lost TaskManager would
        conf.set(JobManagerOptions.EXECUTION_FAILOVER_STRATEGY, "full");
        if (savepoint != null) {
            conf.set(StateRecoveryOptions.SAVEPOINT_PATH, savepoint);
        }
        StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(parallelism, conf);
        MoeStreamJob.build(env, conf);
        if (failureInjector) {
            env.fromSequence(0, Long.MAX_VALUE).name("failure-injector").setParallelism(1)
                    .map(new FailOnce()).setParallelism(1)
                    .sinkTo(new DiscardingSink<>()).setParallelism(1);
        }
        return env.executeAsync("moestream-kv-state");
    }

    private static void awaitRestart() throws InterruptedException {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (FailOnce.OPENED.get() < 2) {
            assertThat(System.nanoTime()).as("the job did not restart after the injected failure").isLessThan(deadline);
            Thread.sleep(50);
        }
    }

    /** Throws once when {@link #FAIL} is set (the MiniCluster runs in this JVM, so statics reach it). */
    static final class FailOnce extends RichMapFunction<Long, Long> {
        static final AtomicBoolean FAIL = new AtomicBoolean();
        static final AtomicInteger FAILURES = new AtomicInteger();
        static final AtomicInteger OPENED = new AtomicInteger();

        static void reset() {
            FAIL.set(false);
            FAILURES.set(0);
            OPENED.set(0);
        }

        @Override
        public void open(OpenContext openContext) {
            OPENED.incrementAndGet();
        }

        @Override
        public Long map(Long value) throws Exception {
            Thread.sleep(20);
            if (FAIL.compareAndSet(true, false)) {
                FAILURES.incrementAndGet();
                throw new IllegalStateException("injected task failure (test)");
            }
            return value;
        }
    }
}
