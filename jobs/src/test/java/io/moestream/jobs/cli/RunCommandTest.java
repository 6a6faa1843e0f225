package io.moestream.jobs.cli;

import io.moestream.jobs.JobOptions;
import org.apache.flink.configuration.Configuration;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import static org.assertj.core.api.Assertions.assertThat;

class RunCommandTest {

    private static Configuration parse(String... args) {
        RunCommand run = new RunCommand();
        new CommandLine(run).parseArgs(args);
        return run.configuration();
    }

    @Test
    void settingsGivenWithDashDAreKeptWhenTheFlagsAreLeftOut() {
        Configuration c = parse("--bootstrap-servers", "k:9092",
                "-Dmoestream.step.max-sequences=3", "-Dmoestream.parallelism=2");
        assertThat(c.get(JobOptions.STEP_MAX_SEQUENCES)).isEqualTo(3);
        assertThat(c.get(JobOptions.PARALLELISM)).isEqualTo(2);
        assertThat(c.get(JobOptions.BOOTSTRAP_SERVERS)).isEqualTo("k:9092");
    }

    @Test
    void withNeitherTheJobOptionsDefaultsApply() {
        Configuration c = parse("--bootstrap-servers", "k:9092");
        assertThat(c.get(JobOptions.STEP_MAX_SEQUENCES)).isEqualTo(JobOptions.STEP_MAX_SEQUENCES.defaultValue());
        assertThat(c.get(JobOptions.PARALLELISM)).isEqualTo(JobOptions.PARALLELISM.defaultValue());
    }

    @Test
    void flagsThatAreGivenApply() {
        Configuration c = parse("--bootstrap-servers", "k:9092", "--batch-size", "6", "--parallelism", "3",
                "-Dmoestream.step.max-sequences=3", "-Dmoestream.parallelism=2");
        assertThat(c.get(JobOptions.STEP_MAX_SEQUENCES)).isEqualTo(6);
        assertThat(c.get(JobOptions.PARALLELISM)).isEqualTo(3);
    }
}
