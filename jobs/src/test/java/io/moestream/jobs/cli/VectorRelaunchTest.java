package io.moestream.jobs.cli;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

class VectorRelaunchTest {

    @Test
    void theChildRunsTheSameCommandLineWithTheModuleAndTheParentsPid() {
        assertThat(VectorRelaunch.childCommand("/jdk/bin/java",
                List.of("-Xmx1g", "-jar", "moestream.jar", "run", "--bootstrap-servers", "k:9092"),
                List.of("run", "--bootstrap-servers", "k:9092"), 42))
                .contains(List.of("/jdk/bin/java", "--add-modules=jdk.incubator.vector", "-Dmoestream.launcher.parent=42",
                        "-Xmx1g", "-jar", "moestream.jar", "run", "--bootstrap-servers", "k:9092"));
    }

    @Test
    void aCommandLineThatDoesNotEndWithTheMainArgumentsIsNotRelaunched() {
        assertThat(VectorRelaunch.childCommand("java", List.of("-jar", "moestream.jar", "bench"), List.of("demo"), 1)).isEmpty();
        assertThat(VectorRelaunch.childCommand("java", List.of("demo"), List.of("demo"), 1)).isEmpty();
        assertThat(VectorRelaunch.childCommand("java", List.of(), List.of("demo"), 1)).isEmpty();
    }
}
