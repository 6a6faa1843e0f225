package io.moestream.jobs.cli;

import io.moestream.jobs.kafka.JsonLinesConsumer;
import io.moestream.jobs.kafka.Topics;
import io.moestream.schemas.RecordType;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.concurrent.Callable;
import org.apache.kafka.clients.consumer.Consumer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/** {@code moestream consume}: Avro records out of a topic as JSON lines. */
@Command(
        name = "consume",
        mixinStandardHelpOptions = true,
        description = {
            "Prints the committed records of a topic (isolation.level=read_committed) as JSON lines.",
            "Stops after --max records or when none arrived for --timeout seconds. Records that cannot be decoded"
                    + " are reported on stderr with partition and offset; the exit code is then 1."
        })
public final class ConsumeCommand implements Callable<Integer> {

    @Spec CommandSpec spec;

    @Option(names = "--bootstrap-servers", required = true, description = "Kafka bootstrap servers, e.g. 127.0.0.1:9092.")
    String bootstrapServers;

    @Option(names = "--topic", required = true, description = "Topic to read, e.g. " + Topics.GENERATIONS + ".")
    String topic;

    @Option(names = "--type", paramLabel = "TYPE",
            description = "Record type: document|prompt|generation|error|context-ready (default: from the topic name).")
    String type;

    @Option(names = "--max", description = "Stop after this many records, 0 = no limit (default: ${DEFAULT-VALUE}).",
            defaultValue = "0")
    int max;

    @Option(names = "--timeout", paramLabel = "SECONDS",
            description = "Stop when no record arrived for this long (default: ${DEFAULT-VALUE}).", defaultValue = "10")
    double timeoutSeconds;

    @Option(names = "--from-beginning", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "Start at the oldest record (default); --no-from-beginning waits for new ones.")
    boolean fromBeginning;

    @Override
    public Integer call() {
        RecordType recordType;
        try {
            recordType = Topics.recordType(topic, type == null ? null : RecordType.parse(type));
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), e.getMessage());
        }
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        Duration idle = Duration.ofMillis((long) (timeoutSeconds * 1000));
        try (Consumer<byte[], byte[]> consumer = JsonLinesConsumer.createConsumer(bootstrapServers)) {
            JsonLinesConsumer.Result result =
                    new JsonLinesConsumer(consumer, topic, recordType).consume(fromBeginning, max, idle, out, err);
            if (result.malformed() > 0) {
                err.println(result.malformed() + " record(s) of " + topic + " could not be decoded as "
                        + recordType.schema().getName());
                err.flush();
                return 1;
            }
            return 0;
        } catch (IllegalStateException e) {
            err.println(e.getMessage());
            err.flush();
            return 1;
        }
    }
}
