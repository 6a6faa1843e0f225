package io.moestream.jobs.kafka;

import static org.assertj.core.api.Assertions.assertThat;

import io.moestream.jobs.cli.ConsumeCommand;
import io.moestream.jobs.cli.ProduceCommand;
import io.moestream.schemas.AvroCodec;
import io.moestream.schemas.Document;
import io.moestream.schemas.JsonAvro;
import io.moestream.schemas.Prompt;
import io.moestream.schemas.RecordType;
import java.io.ByteArrayInputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** One in-process broker for all tests; each test uses its own topics. */
class LocalKafkaTest {

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

    @Test
    void readCommittedSeesOnlyCommittedTransactions() throws Exception {
        String topic = "tx.prompts";
        kafka.createTopics(2, List.of(topic));
        Properties properties = JsonLinesProducer.producerProperties(kafka.bootstrapServers());
        properties.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, "local-kafka-test");
        properties.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, "60000");
        AvroCodec<Prompt> codec = AvroCodec.forPrompt();
        try (Producer<byte[], byte[]> producer = new KafkaProducer<>(properties)) {
            producer.initTransactions();
            producer.beginTransaction();
            producer.send(record(topic, codec, "committed-1"));
            producer.send(record(topic, codec, "committed-2"));
            producer.commitTransaction();
            producer.beginTransaction();
            producer.send(record(topic, codec, "aborted-1"));
            producer.flush();
            producer.abortTransaction();
            producer.beginTransaction();
            producer.send(record(topic, codec, "committed-3"));
            producer.commitTransaction();
        }

        List<String> ids = new ArrayList<>();
        try (Consumer<byte[], byte[]> consumer = JsonLinesConsumer.createConsumer(kafka.bootstrapServers())) {
            List<TopicPartition> partitions = List.of(new TopicPartition(topic, 0), new TopicPartition(topic, 1));
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
            while (ids.size() < 3 && System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    ids.add(codec.decode(r.value()).getRequestId());
                }
            }
            // nothing else arrives: the aborted record stays invisible
            for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofSeconds(1))) {
                ids.add(codec.decode(r.value()).getRequestId());
            }
        }
        assertThat(ids).containsExactlyInAnyOrder("committed-1", "committed-2", "committed-3");
    }

    private static ProducerRecord<byte[], byte[]> record(String topic, AvroCodec<Prompt> codec, String requestId) {
        Prompt prompt = Prompt.newBuilder().setRequestId(requestId).setTenant("acme").setText("Hi").build();
        return new ProducerRecord<>(topic, RecordKeys.keyBytes(prompt), codec.encode(prompt));
    }

    @Test
    void produceAndConsumeCommandsRoundTripAvro() {
        String topic = "cli.prompts";
        kafka.createTopics(List.of(topic));
        String lines = "{\"request_id\":\"r1\",\"tenant\":\"acme\",\"context_id\":\"doc-1\",\"mode\":\"DOCUMENT\","
                + "\"text\":\"Summarize.\",\"max_tokens\":8,\"stop\":[\"END\"]}\n"
                + "{\"request_id\":\"r2\",\"tenant\":\"acme\",\"text\":\"Hi\",\"max_tokens\":\"ten\"}\n"
                + "\n"
                + "{\"request_id\":\"r3\",\"tenant\":\"acme\",\"text\":\"Hello\",\"temperature\":0.7,\"seed\":5}\n";

        Run produce = run(new ProduceCommand(stdin(lines)), "--bootstrap-servers", kafka.bootstrapServers(), "--topic", topic);

        assertThat(produce.exitCode).isEqualTo(1);
        assertThat(produce.err).contains("line 2: field 'max_tokens' must be an int, got \"ten\"")
                .contains("sent 2 records to " + topic + " as Prompt; 1 line(s) not sent");

        Run consume = run(new ConsumeCommand(), "--bootstrap-servers", kafka.bootstrapServers(), "--topic", topic,
                "--max", "2", "--timeout", "10");

        assertThat(consume.exitCode).as(consume.err).isZero();
        List<String> printed = consume.out.lines().toList();
        assertThat(printed).hasSize(2);
        Prompt r1 = JsonAvro.fromJson(printed.stream().filter(l -> l.contains("\"r1\"")).findFirst().orElseThrow(),
                Prompt.class);
        assertThat(r1.getContextId()).isEqualTo("doc-1");
        assertThat(r1.getMaxTokens()).isEqualTo(8);
        assertThat(r1.getStop()).containsExactly("END");
        assertThat(printed).anySatisfy(line -> assertThat(line).contains("\"request_id\":\"r3\"", "\"temperature\":0.7",
                "\"seed\":5", "\"max_tokens\":64", "\"context_id\":null"));

        assertThat(keys(topic, 2)).containsExactlyInAnyOrder("acme/doc-1", "r3");
    }

    @Test
    void documentsAreKeyedByTenantAndDocument() {
        String topic = "cli.documents";
        kafka.createTopics(List.of(topic));
        String lines = "{\"tenant\":\"acme\",\"document_id\":\"manual\",\"part\":0,\"last\":false,\"text\":\"Part one.\"}\n"
                + "{\"tenant\":\"acme\",\"document_id\":\"manual\",\"part\":1,\"text\":\"Part two.\"}\n";

        Run produce = run(new ProduceCommand(stdin(lines)), "--bootstrap-servers", kafka.bootstrapServers(),
                "--topic", topic);

        assertThat(produce.exitCode).as(produce.err).isZero();
        assertThat(keys(topic, 2)).containsExactly("acme/manual", "acme/manual");
        Run consume = run(new ConsumeCommand(), "--bootstrap-servers", kafka.bootstrapServers(), "--topic", topic,
                "--type", "document", "--timeout", "2");
        assertThat(consume.out.lines().map(l -> JsonAvro.fromJson(l, Document.class).getPart()))
                .containsExactly(0, 1);
    }

    @Test
    void rawLinesAreReportedAsMalformedByConsume() {
        String topic = "raw.prompts";
        kafka.createTopics(List.of(topic));

        Run produce = run(new ProduceCommand(stdin("{\"request_id\":\"r1\",\"tenant\":\"acme\",\"text\":\"Hi\"}\n")),
                "--bootstrap-servers", kafka.bootstrapServers(), "--topic", topic, "--raw");
        assertThat(produce.exitCode).as(produce.err).isZero();

        Run consume = run(new ConsumeCommand(), "--bootstrap-servers", kafka.bootstrapServers(), "--topic", topic,
                "--max", "1", "--timeout", "10");
        assertThat(consume.exitCode).isEqualTo(1);
        assertThat(consume.out).isEmpty();
        assertThat(consume.err).contains("partition 0 offset 0: not Avro single-object encoding (first bytes 7b 22")
                .contains("look like JSON");
    }

    @Test
    void topicWithoutKnownTypeNeedsType() {
        Run produce = run(new ProduceCommand(stdin("")), "--bootstrap-servers", kafka.bootstrapServers(),
                "--topic", "misc");

        assertThat(produce.exitCode).isEqualTo(2);
        assertThat(produce.err).contains("cannot tell the record type from topic 'misc'; pass --type "
                + RecordType.cliNames());
    }

    @Test
    void topicNamesImplyRecordTypes() {
        assertThat(Topics.recordType(Topics.PROMPTS)).contains(RecordType.PROMPT);
        assertThat(Topics.recordType(Topics.DOCUMENTS)).contains(RecordType.DOCUMENT);
        assertThat(Topics.recordType(Topics.GENERATIONS)).contains(RecordType.GENERATION);
        assertThat(Topics.recordType(Topics.ERRORS)).contains(RecordType.ERROR);
        assertThat(Topics.recordType(Topics.CONTEXTS)).contains(RecordType.CONTEXT_READY);
        assertThat(Topics.recordType("acme-prompts")).contains(RecordType.PROMPT);
        assertThat(Topics.recordType("misc")).isEmpty();
    }

    private static List<String> keys(String topic, int count) {
        List<String> keys = new ArrayList<>();
        try (Consumer<byte[], byte[]> consumer = JsonLinesConsumer.createConsumer(kafka.bootstrapServers())) {
            List<TopicPartition> partitions = List.of(new TopicPartition(topic, 0));
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while (keys.size() < count && System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    keys.add(new String(r.key(), StandardCharsets.UTF_8));
                }
            }
        }
        return keys;
    }

    private static ByteArrayInputStream stdin(String text) {
        return new ByteArrayInputStream(text.getBytes(StandardCharsets.UTF_8));
    }

    private record Run(int exitCode, String out, String err) {}

    private static Run run(Object command, String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int exitCode = new CommandLine(command).setOut(new PrintWriter(out)).setErr(new PrintWriter(err)).execute(args);
        return new Run(exitCode, out.toString(), err.toString());
    }
}
