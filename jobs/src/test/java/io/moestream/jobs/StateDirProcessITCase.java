package io.moestream.jobs;

import io.moestream.jobs.KafkaTestClient.Output;
import io.moestream.jobs.kafka.LocalKafka;
import io.moestream.schemas.ContextReady;
import io.moestream.schemas.PromptMode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;

import static io.moestream.jobs.KafkaTestClient.cacheAfter;
import static io.moestream.jobs.KafkaTestClient.document;
import static io.moestream.jobs.KafkaTestClient.prompt;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * (d) The single-machine user's failure: {@code java -jar moestream.jar run --state-dir DIR} is
 * killed with SIGKILL and started again with the same DIR. It resumes from the latest completed
 * checkpoint: contexts are intact and every prompt sent before or during the outage is answered
 * exactly once.
 *
 * <p>Runs the shaded jar as a child process, so it is a failsafe test ({@code *ProcessITCase},
 * phase {@code integration-test}, after {@code package}); the jar's path comes from the system
 * property {@code moestream.jar} (default {@code target/moestream.jar}).
 */
class StateDirProcessITCase {

    private static final Duration TIMEOUT = Duration.ofSeconds(180);

    private static LocalKafka kafka;

    private final List<Process> children = new ArrayList<>();

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

    @AfterEach
    void stopChildren() throws InterruptedException {
        for (Process child : children) {
            child.destroy();
            if (!child.waitFor(20, TimeUnit.SECONDS)) {
                child.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            }
        }
    }

    @Test
    void aKilledRunResumesFromItsStateDirectory(@TempDir Path dir) throws Exception {
        Path jar = Path.of(System.getProperty("moestream.jar", "target/moestream.jar"));
        assumeTrue(Files.isRegularFile(jar), "no shaded jar at " + jar.toAbsolutePath()
                + ": run with `mvn verify` (failsafe, after package) or build it first");
        KafkaTestClient topics = KafkaTestClient.fresh(kafka, "statedir", 2);
        Path stateDir = dir.resolve("state");

        Process first = run(jar, topics, stateDir, dir.resolve("first.log"));
        topics.send(
                document("acme", "manual", 0, true, "Dictionaries map hashable keys to values."),
                prompt("before-1", "acme", "manual", PromptMode.DOCUMENT, "To look up a key,"),
                prompt("chat-1", "acme", "chat", PromptMode.CONVERSATION, "The import statement"),
                prompt("before-2", "acme", null, PromptMode.STATELESS, "Strings are"));
        topics.readCommitted(o -> o.contexts.size() == 1 && o.answered("before-1", "chat-1", "before-2"),
                TIMEOUT, Duration.ZERO);

        // prompts on their way when the process dies: some may be answered, none committed twice
        topics.send(IntStream.range(0, 6)
                .mapToObj(i -> prompt("inflight-" + i, "acme", null, PromptMode.STATELESS, "A tuple is"))
                .toArray(io.moestream.schemas.Prompt[]::new));
        Thread.sleep(1500);
        // the launcher runs the job in a child JVM (with the Vector API); it halts when the launcher dies
        List<ProcessHandle> jobJvms = first.descendants().toList();
        assertThat(jobJvms).as("the launcher's child JVM").isNotEmpty();
        first.destroyForcibly(); // SIGKILL
        assertThat(first.waitFor(30, TimeUnit.SECONDS)).isTrue();
        for (ProcessHandle jvm : jobJvms) {
            assertThat(jvm.onExit().get(30, TimeUnit.SECONDS).isAlive()).as("the job's JVM outlived the launcher").isFalse();
        }

        // the outage: prompts keep coming
        topics.send(
                prompt("outage-1", "acme", "manual", PromptMode.DOCUMENT, "Keys must be"),
                prompt("chat-2", "acme", "chat", PromptMode.CONVERSATION, " and then"),
                prompt("outage-2", "acme", null, PromptMode.STATELESS, "A for loop"));

        Path secondLog = dir.resolve("second.log");
        run(jar, topics, stateDir, secondLog);
        topics.send(
                prompt("after-1", "acme", "manual", PromptMode.DOCUMENT, "Removing a key"),
                prompt("chat-3", "acme", "chat", PromptMode.CONVERSATION, " so that"));

        List<String> ids = new ArrayList<>(List.of("before-1", "before-2", "chat-1", "outage-1", "outage-2", "chat-2",
                "after-1", "chat-3"));
        IntStream.range(0, 6).forEach(i -> ids.add("inflight-" + i));
        Output out = topics.readCommitted(o -> o.answered(ids.toArray(String[]::new)), TIMEOUT, Duration.ofSeconds(3));

        assertThat(Files.readString(secondLog, StandardCharsets.UTF_8)).as("second run's output").contains("resuming from");
        for (String id : ids) {
            assertThat(out.answers(id)).as("answers to %s; output: %s", id, out).hasSize(1);
        }
        assertThat(out.errors).isEmpty();
        ContextReady manual = out.ready("acme", "manual").get(0);
        for (String id : List.of("before-1", "outage-1", "after-1")) {
            assertThat(out.answer(id).getUsage().getCachedTokens()).as("cached tokens of %s", id).isEqualTo(manual.getTokens());
        }
        assertThat(out.answer("chat-2").getUsage().getCachedTokens()).isEqualTo(cacheAfter(out.answer("chat-1")));
        assertThat(out.answer("chat-3").getUsage().getCachedTokens()).isEqualTo(cacheAfter(out.answer("chat-2")));
        // the document was prefilled by the first process only: no ContextReady at all (aborted included) from the second
        assertThat(topics.read(false, o -> false, Duration.ofSeconds(2)).ready("acme", "manual")).hasSize(1);
    }

    /** {@code java -jar moestream.jar run ...} (as the README has it) as a child process, its output in {@code log}; returns once the job runs. */
    private Process run(Path jar, KafkaTestClient topics, Path stateDir, Path log) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of(
                ProcessHandle.current().info().command().orElse("java"),
                "-Xmx768m",
                "-jar", jar.toAbsolutePath().toString(), "run",
                "--bootstrap-servers", kafka.bootstrapServers(),
                "--state-dir", stateDir.toString(),
                "--batch-size", "4"));
        command.addAll(topics.runArguments());
        Process process = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        children.add(process);
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (!Files.readString(log, StandardCharsets.UTF_8).contains("running against")) {
            assertThat(process.isAlive()).as("the run command exited: %s", Files.readString(log)).isTrue();
            assertThat(System.nanoTime()).as("the run command did not start: %s", Files.readString(log)).isLessThan(deadline);
            Thread.sleep(200);
        }
        return process;
    }
}
