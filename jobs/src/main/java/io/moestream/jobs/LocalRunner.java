package io.moestream.jobs;

import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.ExternalizedCheckpointRetention;
import org.apache.flink.configuration.StateRecoveryOptions;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * Runs {@link MoeStreamJob} on an embedded Flink MiniCluster in this JVM (the {@code demo} and
 * {@code run} commands). With a state directory, checkpoints are kept there and a new start resumes
 * from the latest completed one.
 */
public final class LocalRunner {
    private static final Logger LOG = LoggerFactory.getLogger(LocalRunner.class);

    private LocalRunner() {}

    /**
     * Starts the job and returns at once.
     *
     * @param conf     job options ({@link JobOptions}) plus any Flink settings
     * @param stateDir where checkpoints live, or null for a throw-away directory
     */
    public static JobClient start(Configuration conf, Path stateDir, String jobName) throws Exception {
        Configuration flink = JobOptions.withStateDefaults(conf);
        if (stateDir != null) {
            Path checkpoints = stateDir.toAbsolutePath().resolve("checkpoints");
            Files.createDirectories(checkpoints);
            flink.set(CheckpointingOptions.CHECKPOINTS_DIRECTORY, checkpoints.toUri().toString());
            flink.set(CheckpointingOptions.EXTERNALIZED_CHECKPOINT_RETENTION,
                    ExternalizedCheckpointRetention.RETAIN_ON_CANCELLATION);
            latestCheckpoint(checkpoints).ifPresent(chk -> {
                LOG.info("Resuming from checkpoint {}", chk);
                System.out.println("resuming from " + chk);
                flink.set(StateRecoveryOptions.SAVEPOINT_PATH, chk.toUri().toString());
            });
        } else if (!flink.contains(CheckpointingOptions.CHECKPOINTS_DIRECTORY)) {
            // Without a directory Flink keeps checkpoints in the JobManager's memory, capped at 5 MB
            // per state handle: a few dozen conversations' KV caches exceed it, every checkpoint then
            // fails and the exactly-once sinks never commit. A throw-away directory has no cap.
            Path checkpoints = Files.createTempDirectory("moestream-checkpoints-");
            Runtime.getRuntime().addShutdownHook(new Thread(() -> deleteRecursively(checkpoints),
                    "moestream-checkpoints-cleanup"));
            flink.set(CheckpointingOptions.CHECKPOINTS_DIRECTORY, checkpoints.toUri().toString());
        }
        StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(
                flink.get(JobOptions.PARALLELISM), flink);
        MoeStreamJob.build(env, flink);
        return env.executeAsync(jobName);
    }

    private static void deleteRecursively(Path dir) {
        try (Stream<Path> files = Files.walk(dir)) {
            files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            LOG.debug("could not delete {}", dir, e);
        }
    }

    /** The newest {@code chk-N} directory (by N) holding a {@code _metadata} file, in any job's folder. */
    static Optional<Path> latestCheckpoint(Path checkpoints) {
        if (!Files.isDirectory(checkpoints)) {
            return Optional.empty();
        }
        try (Stream<Path> files = Files.find(checkpoints, 3,
                (p, a) -> p.getFileName().toString().equals("_metadata")
                        && p.getParent().getFileName().toString().startsWith("chk-"))) {
            return files.map(Path::getParent)
                    .max(Comparator.comparingLong((Path p) -> lastModified(p.resolve("_metadata")))
                            .thenComparingLong(LocalRunner::checkpointNumber));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list checkpoints in " + checkpoints, e);
        }
    }

    private static long lastModified(Path p) {
        try {
            return Files.getLastModifiedTime(p).toMillis();
        } catch (IOException e) {
            return 0L;
        }
    }

    private static long checkpointNumber(Path chkDir) {
        return Long.parseLong(chkDir.getFileName().toString().substring("chk-".length()));
    }
}
