package io.moestream.jobs.cli;

import io.moestream.jobs.JobOptions;
import io.moestream.jobs.LocalRunner;
import io.moestream.operators.ProgressStats;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.execution.JobClient;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.Closeable;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code run}: the job on a local MiniCluster against an existing Kafka, until interrupted. */
@Command(name = "run", mixinStandardHelpOptions = true,
        description = "Run the moestream job on a local Flink MiniCluster against an existing Kafka until interrupted.")
public final class RunCommand implements Callable<Integer> {

    @Option(names = "--bootstrap-servers", required = true, description = "Kafka bootstrap servers, HOST:PORT[,HOST:PORT].")
    String bootstrapServers;

    @Option(names = "--model", description = "GGUF model file (default: the bundled trained MoE).")
    Path model;

    @Option(names = "--state-dir", description = "Keep checkpoints here; a later start with the same directory resumes from the latest one.")
    Path stateDir;

    @Option(names = "--parallelism", description = "Parallelism of the job, moestream.parallelism (default: that option, 1).")
    Integer parallelism;

    @Option(names = "--batch-size", description = "Most requests running together in one engine step, moestream.step.max-sequences (default: that option, 8).")
    Integer batchSize;

    @Option(names = "-D", mapFallbackValue = "", description = "Any job option or Flink setting, e.g. -Dmoestream.topic.prompts=my.prompts")
    Map<String, String> settings = Map.of();

    /**
     * The job's configuration: the {@code -D} settings, then the options given on the command line
     * (an option left out keeps the {@code -D} value or the job option's default).
     */
    Configuration configuration() {
        Configuration conf = Configuration.fromMap(settings);
        conf.set(JobOptions.BOOTSTRAP_SERVERS, bootstrapServers);
        if (parallelism != null) {
            conf.set(JobOptions.PARALLELISM, parallelism);
        }
        if (batchSize != null) {
            conf.set(JobOptions.STEP_MAX_SEQUENCES, batchSize);
        }
        if (model != null) {
            conf.set(JobOptions.MODEL_PATH, CliSupport.existingFile(model, "--model").toString());
        }
        return conf;
    }

    @Override
    public Integer call() throws Exception {
        Configuration conf = configuration();
        JobClient job;
        try {
            job = LocalRunner.start(conf, stateDir, "moestream");
        } catch (IllegalArgumentException e) { // an option's value the job cannot start with; the message names it
            System.err.println("cannot start the job: " + e.getMessage());
            return 2;
        }
        System.out.println("moestream job " + job.getJobID() + " running against " + bootstrapServers + " (Ctrl-C stops it)");
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                job.cancel().get();
            } catch (Exception e) {
                System.err.println("could not cancel the job cleanly: " + e.getMessage());
            }
        }));
        try (Closeable progress = ProgressStats.startPrinter(System.out, conf.get(JobOptions.PROGRESS_INTERVAL))) {
            job.getJobExecutionResult().get();
        }
        return 0;
    }
}
