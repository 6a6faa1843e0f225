package io.moestream.jobs.cli;

import io.moestream.jobs.kafka.JsonLinesProducer;
import io.moestream.jobs.kafka.Topics;
import io.moestream.schemas.RecordType;
import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import org.apache.kafka.clients.producer.Producer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/** {@code moestream produce}: JSON lines in, Avro single-object-encoded records out. */
@Command(
        name = "produce",
        mixinStandardHelpOptions = true,
        description = {
            "Sends JSON lines (stdin or --file) to a topic as Avro records (single-object encoding).",
            "Fields are the Avro field names; fields with defaults may be left out, enums are strings,"
                    + " bytes are base64. Key: tenant/context_id (tenant/document_id for documents),"
                    + " else request_id.",
            "Bad lines are reported with their line number and skipped; the exit code is 1 if any line was not sent."
        })
public final class ProduceCommand implements Callable<Integer> {

    @Spec CommandSpec spec;

    @Option(names = "--bootstrap-servers", required = true, description = "Kafka bootstrap servers, e.g. 127.0.0.1:9092.")
    String bootstrapServers;

    @Option(names = "--topic", required = true, description = "Topic to write to, e.g. " + Topics.PROMPTS + ".")
    String topic;

    @Option(names = "--type", paramLabel = "TYPE",
            description = "Record type: document|prompt|generation|error|context-ready (default: from the topic name).")
    String type;

    @Option(names = "--file", description = "Read JSON lines from this file instead of stdin.")
    Path file;

    @Option(names = "--raw", description = "Send each line's bytes as they are, without Avro (to try malformed input).")
    boolean raw;

    private final InputStream stdin;

    public ProduceCommand() {
        this(System.in);
    }

    /** With another standard input (tests). */
    public ProduceCommand(InputStream stdin) {
        this.stdin = stdin;
    }

    @Override
    public Integer call() throws Exception {
        RecordType recordType = raw ? null : recordType();
        PrintWriter err = spec.commandLine().getErr();
        try (Producer<byte[], byte[]> producer = JsonLinesProducer.createProducer(bootstrapServers);
                BufferedReader lines = file != null ? Files.newBufferedReader(file, StandardCharsets.UTF_8)
                        : new BufferedReader(new InputStreamReader(stdin, StandardCharsets.UTF_8))) {
            JsonLinesProducer.Result result = new JsonLinesProducer(producer, topic, recordType, raw).send(lines, err);
            err.println("sent " + result.sent() + " record" + (result.sent() == 1 ? "" : "s") + " to " + topic
                    + (raw ? " (raw)" : " as " + recordType.schema().getName())
                    + (result.failed() > 0 ? "; " + result.failed() + " line(s) not sent" : ""));
            err.flush();
            return result.failed() > 0 ? 1 : 0;
        }
    }

    private RecordType recordType() {
        try {
            return Topics.recordType(topic, type == null ? null : RecordType.parse(type));
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), e.getMessage());
        }
    }
}
