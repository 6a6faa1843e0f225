package io.moestream.jobs.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The launcher's child JVM with {@code jdk.incubator.vector}: started from a JVM without the module,
 * it gets the module, the parent's stdin, stdout and stderr, and the parent exits with its exit code;
 * terminating the parent stops the child through its shutdown hooks, killing the parent halts it.
 * {@link RelaunchProbe} stands in for {@link Main}; the last test runs the shaded jar itself.
 */
class VectorRelaunchProcessITCase {

    private static final long TIMEOUT_S = 60;

    private final List<Process> started = new ArrayList<>();

    @AfterEach
    void stopAll() {
        for (Process p : started) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
        }
    }

    @Test
    void theChildHasTheModuleAndTheParentsStdinStdoutAndStderr(@TempDir Path dir) throws Exception {
        Path out = dir.resolve("out");
        Path err = dir.resolve("err");
        Path in = dir.resolve("in");
        Files.writeString(in, "hello\nworld\n");
        Process parent = probe(List.of(), "echo").redirectInput(in.toFile())
                .redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        started.add(parent);
        assertThat(parent.waitFor(TIMEOUT_S, TimeUnit.SECONDS)).isTrue();

        assertThat(parent.exitValue()).as("stderr: %s", Files.readString(err)).isZero();
        List<String> lines = Files.readAllLines(out);
        assertThat(lines).hasSize(3);
        assertThat(lines.get(0)).startsWith("vector=true pid=").isNotEqualTo("vector=true pid=" + parent.pid());
        assertThat(lines.subList(1, 3)).containsExactly("HELLO", "WORLD");
        assertThat(Files.readString(err)).contains("echo done");
    }

    @Test
    void theParentExitsWithTheChildsExitCode() throws Exception {
        Process parent = start(probe(List.of(), "exit", "7"));
        assertThat(parent.waitFor(TIMEOUT_S, TimeUnit.SECONDS)).isTrue();
        assertThat(parent.exitValue()).isEqualTo(7);
    }

    @Test
    void aChildKilledBySignalGivesTheShellsCode() throws Exception {
        Process parent = start(probe(List.of(), "wait"));
        ProcessHandle child = childOf(parent);
        child.destroyForcibly();
        assertThat(parent.waitFor(TIMEOUT_S, TimeUnit.SECONDS)).isTrue();
        assertThat(parent.exitValue()).isEqualTo(128 + 9);
    }

    @Test
    void terminatingTheParentStopsTheChildThroughItsShutdownHooks(@TempDir Path dir) throws Exception {
        Path err = dir.resolve("err");
        Process parent = start(probe(List.of(), "wait").redirectError(err.toFile()));
        ProcessHandle child = childOf(parent);
        parent.destroy(); // SIGTERM to the parent only
        assertThat(parent.waitFor(TIMEOUT_S, TimeUnit.SECONDS)).isTrue();
        assertThat(child.isAlive()).as("the child outlived its parent").isFalse();
        assertThat(Files.readString(err)).contains("child stopping");
        assertThat(parent.exitValue()).isEqualTo(128 + 15);
    }

    @Test
    void killingTheParentHaltsTheChild() throws Exception {
        Process parent = start(probe(List.of(), "wait"));
        ProcessHandle child = childOf(parent);
        parent.destroyForcibly(); // SIGKILL: no shutdown hook in the parent
        assertThat(parent.waitFor(TIMEOUT_S, TimeUnit.SECONDS)).isTrue();
        assertThat(child.onExit().get(TIMEOUT_S, TimeUnit.SECONDS).isAlive()).isFalse();
    }

    @Test
    void theSwitchKeepsEverythingInOneJvm() throws Exception {
        Process parent = start(probe(List.of("-D" + VectorRelaunch.SWITCH_PROPERTY + "=false"), "exit", "0"));
        assertThat(parent.waitFor(TIMEOUT_S, TimeUnit.SECONDS)).isTrue();
        String first = new String(parent.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(first).startsWith("vector=false pid=" + parent.pid());
    }

    @Test
    void theJarsBenchRunsTheSameKernelsAsWithTheFlag(@TempDir Path dir) throws Exception {
        Path jar = Path.of(System.getProperty("moestream.jar", "target/moestream.jar"));
        assumeTrue(Files.isRegularFile(jar), "no shaded jar at " + jar.toAbsolutePath()
                + ": run with `mvn verify` (failsafe, after package) or build it first");
        Path model = dir.resolve("tiny.gguf");
        assertThat(runJar(jar, List.of(), "make-model", "--out", model.toString(), "--preset", "tiny")).isNotNull();

        String[] bench = {"bench", "--model", model.toString(), "--threads", "1", "--prompt-tokens", "4", "--gen-tokens", "2", "--json"};
        String byDefault = kernels(runJar(jar, List.of(), bench));
        String withFlag = kernels(runJar(jar, List.of("--add-modules", VectorRelaunch.MODULE), bench));
        String switchedOff = kernels(runJar(jar, List.of("-D" + VectorRelaunch.SWITCH_PROPERTY + "=false"), bench));

        assertThat(byDefault).isEqualTo(withFlag);
        if (withFlag.contains("vector")) {
            assertThat(switchedOff).doesNotContain("vector");
        }
    }

    private static String kernels(String json) throws IOException {
        return new ObjectMapper().readTree(json).get("kernels").asText();
    }

    /** Runs the jar to the end; returns its stdout (asserting exit code 0). */
    private String runJar(Path jar, List<String> jvmOptions, String... args) throws Exception {
        List<String> command = new ArrayList<>(List.of(java()));
        command.addAll(jvmOptions);
        command.addAll(List.of("-jar", jar.toAbsolutePath().toString()));
        command.addAll(List.of(args));
        Process p = start(new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.DISCARD));
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(TIMEOUT_S, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as("%s: %s", command, out).isZero();
        return out;
    }

    private static ProcessBuilder probe(List<String> jvmOptions, String... args) {
        List<String> command = new ArrayList<>(List.of(java(), "-cp", System.getProperty("java.class.path")));
        command.addAll(jvmOptions);
        command.add(RelaunchProbe.class.getName());
        command.addAll(List.of(args));
        return new ProcessBuilder(command);
    }

    private Process start(ProcessBuilder pb) throws IOException {
        Process p = pb.start();
        started.add(p);
        return p;
    }

    /** The probe's child, once it has printed its first line (so its hooks are in place). */
    private static ProcessHandle childOf(Process parent) throws Exception {
        String first = new String(readLine(parent), StandardCharsets.UTF_8);
        assertThat(first).startsWith("vector=true pid=");
        long pid = Long.parseLong(first.substring(first.indexOf("pid=") + 4).trim());
        return ProcessHandle.of(pid).orElseThrow();
    }

    private static byte[] readLine(Process p) throws IOException {
        var bytes = new java.io.ByteArrayOutputStream();
        for (int b; (b = p.getInputStream().read()) != -1 && b != '\n'; ) {
            bytes.write(b);
        }
        return bytes.toByteArray();
    }

    private static String java() {
        return ProcessHandle.current().info().command().orElse("java");
    }
}
