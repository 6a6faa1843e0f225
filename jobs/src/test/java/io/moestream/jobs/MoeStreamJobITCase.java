package io.moestream.jobs;

import io.moestream.jobs.kafka.LocalKafka;
import io.moestream.jobs.kafka.Topics;
import io.moestream.operators.ProgressStats;
import io.moestream.schemas.AvroCodec;
import io.moestream.schemas.ContextReady;
import io.moestream.schemas.Document;
import io.moestream.schemas.ErrorCode;
import io.moestream.schemas.Generation;
import io.moestream.schemas.InferenceError;
import io.moestream.schemas.Prompt;
import io.moestream.schemas.PromptMode;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.execution.JobClient;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Future;
import java.util.function.Function;
import java.util.stream.Collectors;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The whole product end to end: a real in-process KRaft broker, the job on a MiniCluster, Avro on the
 * wire, the exactly-once Kafka sink read with {@code read_committed}.
 */
class MoeStreamJobITCase {

    private static LocalKafka kafka;

    @BeforeAll
    static void startKafka() throws Exception {
        kafka = LocalKafka.start(0);
        kafka.createTopics(Topics.ALL);
    }

    @AfterAll
    static void stopKafka() throws Exception {
        if (kafka != null) {
            kafka.close();
        }
    }

    @Test
    void everyRequestIsAnsweredExactlyOnceAndTheMalformedRecordOnceAsAnError(@TempDir Path schemas) throws Exception {
        // a producer pinned to an older Prompt schema, registered through the job option
        Files.writeString(schemas.resolve("prompt-v0.avsc"), WriterSchemasTest.OLDER_PROMPT);
        Configuration conf = new Configuration();
        conf.set(JobOptions.BOOTSTRAP_SERVERS, kafka.bootstrapServers());
        conf.set(JobOptions.CHECKPOINT_INTERVAL, Duration.ofMillis(500));
        conf.set(JobOptions.STEP_MAX_SEQUENCES, 4);
        conf.set(JobOptions.WRITER_SCHEMAS_DIR, schemas.toString());
        long errorsBefore = ProgressStats.snapshot().errors();
        JobClient job = LocalRunner.start(conf, null, "moestream-itcase");
        try {
            List<Document> docs = List.of(
                    doc("t1", "manual", 0, false, "The list type is a mutable sequence. "),
                    doc("t1", "manual", 1, true, "Lists support append and sort."),
                    doc("t2", "manual", 0, true, "Exceptions stop the program unless handled."));
            List<Prompt> prompts = List.of(
                    prompt("d1", "t1", "manual", PromptMode.DOCUMENT, "To add an item,"),
                    prompt("d2", "t1", "manual", PromptMode.DOCUMENT, "Sorting"),
                    prompt("d3", "t2", "manual", PromptMode.DOCUMENT, "An exception"),
                    prompt("c1", "t1", "chat", PromptMode.CONVERSATION, "The import statement"),
                    prompt("c2", "t1", "chat", PromptMode.CONVERSATION, " and then"),
                    prompt("s1", "t2", null, PromptMode.STATELESS, "Strings are"));
            send(docs, prompts, "{\"this is\": \"json, not avro\"}", WriterSchemasTest.olderPrompt("old-1", "A tuple is"));

            Map<String, List<Object>> out = readUntil(prompts.size() + 1, 1, 2, Duration.ofSeconds(240));
            // keep reading a little longer: a duplicate would show up within a few checkpoints
            Map<String, List<Object>> more = readUntil(Integer.MAX_VALUE, 0, 0, Duration.ofSeconds(3));
            out.get(Topics.GENERATIONS).addAll(more.get(Topics.GENERATIONS));
            out.get(Topics.ERRORS).addAll(more.get(Topics.ERRORS));
            out.get(Topics.CONTEXTS).addAll(more.get(Topics.CONTEXTS));

            Map<String, Long> generationsPerRequest = out.get(Topics.GENERATIONS).stream()
                    .map(g -> ((Generation) g).getRequestId())
                    .collect(Collectors.groupingBy(Function.identity(), Collectors.counting()));
            assertThat(generationsPerRequest)
                    .as("generations per request; all records read: %s", out)
                    .containsOnlyKeys("d1", "d2", "d3", "c1", "c2", "s1", "old-1")
                    .allSatisfy((id, n) -> assertThat(n).as("generations for %s", id).isEqualTo(1L));

            assertThat(out.get(Topics.ERRORS)).hasSize(1);
            InferenceError error = (InferenceError) out.get(Topics.ERRORS).get(0);
            assertThat(error.getCode()).isEqualTo(ErrorCode.MALFORMED_RECORD);
            assertThat(error.getSourceTopic()).isEqualTo(Topics.PROMPTS);
            assertThat(error.getMessage()).containsIgnoringCase("avro");
            assertThat(ProgressStats.snapshot().errors() - errorsBefore).as("errors on the progress line").isEqualTo(1);

            Map<String, ContextReady> contexts = out.get(Topics.CONTEXTS).stream()
                    .map(c -> (ContextReady) c)
                    .collect(Collectors.toMap(c -> c.getTenant() + "/" + c.getContextId(), c -> c));
            assertThat(contexts).containsOnlyKeys("t1/manual", "t2/manual");

            Map<String, Generation> byId = out.get(Topics.GENERATIONS).stream()
                    .map(g -> (Generation) g)
                    .collect(Collectors.toMap(Generation::getRequestId, g -> g));
            // questions reuse the whole document from the cache, and each tenant sees only its own document
            assertThat(byId.get("d1").getUsage().getCachedTokens()).isEqualTo(contexts.get("t1/manual").getTokens());
            assertThat(byId.get("d2").getUsage().getCachedTokens()).isEqualTo(contexts.get("t1/manual").getTokens());
            assertThat(byId.get("d3").getUsage().getCachedTokens()).isEqualTo(contexts.get("t2/manual").getTokens());
            // the second turn continues the first: its cache holds turn 1's prompt and answer
            Generation c1 = byId.get("c1");
            assertThat(byId.get("c2").getUsage().getCachedTokens())
                    .isEqualTo(c1.getUsage().getPromptTokens() + c1.getUsage().getGeneratedTokens());
            assertThat(byId.get("s1").getUsage().getCachedTokens()).isZero();
            assertThat(byId.get("old-1").getUsage().getGeneratedTokens()).as("max_tokens of the older record").isBetween(1, 6);
            assertThat(byId.values()).allSatisfy(g -> assertThat(g.getTokenIds()).isNotEmpty());
        } finally {
            job.cancel().get();
        }
    }

    @Test
    void atLeastOnceSinksMakeAnswersVisibleWithoutWaitingForACheckpoint() throws Exception {
        KafkaTestClient topics = KafkaTestClient.fresh(kafka, "at-least-once", 1);
        Configuration conf = topics.jobOptions();
        conf.set(JobOptions.CHECKPOINT_INTERVAL, Duration.ofMinutes(30)); // no checkpoint completes during the test
        conf.set(JobOptions.DELIVERY, "at-least-once");
        JobClient job = LocalRunner.start(conf, null, "moestream-at-least-once");
        try {
            topics.send(KafkaTestClient.prompt("alo-1", "t1", null, PromptMode.STATELESS, "Strings are"));
            KafkaTestClient.Output out = topics.readCommitted(o -> o.answered("alo-1"), Duration.ofSeconds(120), Duration.ZERO);
            assertThat(out.answers("alo-1")).as("output: %s", out).hasSize(1);
        } finally {
            job.cancel().get();
        }
    }

    private static void send(List<Document> docs, List<Prompt> prompts, String malformed, byte[] olderPrompt) throws Exception {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        try (KafkaProducer<byte[], byte[]> producer =
                     new KafkaProducer<>(props, new ByteArraySerializer(), new ByteArraySerializer())) {
            List<Future<?>> sent = new ArrayList<>();
            for (Document d : docs) {
                sent.add(producer.send(new ProducerRecord<>(Topics.DOCUMENTS,
                        utf8(d.getTenant() + "/" + d.getDocumentId()), AvroCodec.forDocument().encode(d))));
            }
            for (Prompt p : prompts) {
                String key = p.getContextId() == null ? p.getRequestId() : p.getTenant() + "/" + p.getContextId();
                sent.add(producer.send(new ProducerRecord<>(Topics.PROMPTS, utf8(key), AvroCodec.forPrompt().encode(p))));
            }
            sent.add(producer.send(new ProducerRecord<>(Topics.PROMPTS, utf8("bad"), utf8(malformed))));
            sent.add(producer.send(new ProducerRecord<>(Topics.PROMPTS, utf8("old-1"), olderPrompt)));
            for (Future<?> f : sent) {
                f.get();
            }
        }
    }

    private static Map<String, List<Object>> readUntil(int generations, int errors, int contexts, Duration timeout) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
        props.put(ConsumerConfig.GROUP_ID_CONFIG, "itcase-reader");
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        Map<String, List<Object>> out = Map.of(
                Topics.GENERATIONS, new ArrayList<>(), Topics.ERRORS, new ArrayList<>(), Topics.CONTEXTS, new ArrayList<>());
        long deadline = System.nanoTime() + timeout.toNanos();
        try (KafkaConsumer<byte[], byte[]> consumer =
                     new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            consumer.subscribe(List.of(Topics.GENERATIONS, Topics.ERRORS, Topics.CONTEXTS));
            while (System.nanoTime() < deadline
                    && (out.get(Topics.GENERATIONS).size() < generations
                    || out.get(Topics.ERRORS).size() < errors
                    || out.get(Topics.CONTEXTS).size() < contexts)) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    Object record = switch (r.topic()) {
                        case Topics.GENERATIONS -> AvroCodec.forGeneration().decode(r.value());
                        case Topics.ERRORS -> AvroCodec.forInferenceError().decode(r.value());
                        default -> AvroCodec.forContextReady().decode(r.value());
                    };
                    out.get(r.topic()).add(record);
                }
            }
            consumer.commitSync();
        }
        return out;
    }

    private static Document doc(String tenant, String id, int part, boolean last, String text) {
        return Document.newBuilder().setTenant(tenant).setDocumentId(id).setPart(part).setLast(last).setText(text).build();
    }

    private static Prompt prompt(String id, String tenant, String context, PromptMode mode, String text) {
        return Prompt.newBuilder().setRequestId(id).setTenant(tenant).setContextId(context).setMode(mode)
                .setText(text).setMaxTokens(8).setTemperature(0f).build();
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
