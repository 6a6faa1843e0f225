package io.moestream.jobs;

import io.moestream.jobs.kafka.LocalKafka;
import io.moestream.jobs.kafka.RecordKeys;
import io.moestream.schemas.AvroCodec;
import io.moestream.schemas.ContextReady;
import io.moestream.schemas.Document;
import io.moestream.schemas.Generation;
import io.moestream.schemas.InferenceError;
import io.moestream.schemas.Prompt;
import io.moestream.schemas.PromptMode;
import org.apache.avro.specific.SpecificRecord;
import org.apache.flink.configuration.Configuration;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Predicate;

/**
 * Kafka plumbing shared by the end-to-end tests: a fresh set of the job's five topics per test
 * ({@link #fresh}), sending Avro records with the job's keys, and reading the output topics with
 * {@code read_committed} (what a user sees) or {@code read_uncommitted} (also what aborted
 * transactions wrote: every record the job ever emitted).
 */
final class KafkaTestClient {

    private static final AtomicInteger SEQUENCE = new AtomicInteger();

    private final LocalKafka kafka;
    /** Names of this test's topics, group id and transactional id prefix. */
    final String documents;
    final String prompts;
    final String generations;
    final String errors;
    final String contexts;
    final String name;

    private KafkaTestClient(LocalKafka kafka, String name) {
        this.kafka = kafka;
        this.name = name;
        this.documents = name + ".documents";
        this.prompts = name + ".prompts";
        this.generations = name + ".generations";
        this.errors = name + ".errors";
        this.contexts = name + ".contexts";
    }

    /** Creates five new topics ({@code NAME-N.documents}, ...) with {@code partitions} partitions each. */
    static KafkaTestClient fresh(LocalKafka kafka, String name, int partitions) {
        KafkaTestClient client = new KafkaTestClient(kafka, name + "-" + SEQUENCE.incrementAndGet());
        kafka.createTopics(partitions, List.of(client.documents, client.prompts, client.generations,
                client.errors, client.contexts));
        return client;
    }

    /** Job options that point the job at these topics, with its own consumer group and transactional ids. */
    Configuration jobOptions() {
        Configuration conf = new Configuration();
        conf.set(JobOptions.BOOTSTRAP_SERVERS, kafka.bootstrapServers());
        conf.set(JobOptions.TOPIC_DOCUMENTS, documents);
        conf.set(JobOptions.TOPIC_PROMPTS, prompts);
        conf.set(JobOptions.TOPIC_GENERATIONS, generations);
        conf.set(JobOptions.TOPIC_ERRORS, errors);
        conf.set(JobOptions.TOPIC_CONTEXTS, contexts);
        conf.set(JobOptions.GROUP_ID, name);
        conf.set(JobOptions.TRANSACTIONAL_ID_PREFIX, name);
        conf.set(JobOptions.CHECKPOINT_INTERVAL, Duration.ofMillis(500));
        return conf;
    }

    /** The same as {@link #jobOptions()}, as {@code -Dkey=value} arguments of the {@code run} command. */
    List<String> runArguments() {
        List<String> args = new ArrayList<>();
        jobOptions().toMap().forEach((k, v) -> {
            if (!k.equals(JobOptions.BOOTSTRAP_SERVERS.key())) {
                args.add("-D" + k + "=" + v);
            }
        });
        return args;
    }

    /** Sends documents and prompts (in order, each to its topic, keyed like the job expects); waits for every ack. */
    void send(SpecificRecord... records) throws Exception {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        try (KafkaProducer<byte[], byte[]> producer =
                     new KafkaProducer<>(props, new ByteArraySerializer(), new ByteArraySerializer())) {
            List<Future<?>> sent = new ArrayList<>();
            for (SpecificRecord record : records) {
                String topic;
                byte[] value;
                if (record instanceof Document d) {
                    topic = documents;
                    value = AvroCodec.forDocument().encode(d);
                } else if (record instanceof Prompt p) {
                    topic = prompts;
                    value = AvroCodec.forPrompt().encode(p);
                } else {
                    throw new IllegalArgumentException("only documents and prompts go in: " + record);
                }
                sent.add(producer.send(new ProducerRecord<>(topic, RecordKeys.keyBytes(record), value)));
            }
            for (Future<?> f : sent) {
                f.get();
            }
        }
    }

    /** Everything the job wrote so far and what it writes until {@code done} holds or {@code timeout}. */
    Output read(boolean committedOnly, Predicate<Output> done, Duration timeout) {
        Output out = new Output();
        long deadline = System.nanoTime() + timeout.toNanos();
        try (KafkaConsumer<byte[], byte[]> consumer = consumer(committedOnly)) {
            while (!done.test(out) && System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    if (r.topic().equals(generations)) {
                        out.generations.add(AvroCodec.forGeneration().decode(r.value()));
                    } else if (r.topic().equals(errors)) {
                        out.errors.add(AvroCodec.forInferenceError().decode(r.value()));
                    } else {
                        out.contexts.add(AvroCodec.forContextReady().decode(r.value()));
                    }
                }
            }
        }
        return out;
    }

    /** Committed output, read until {@code done} holds (or {@code timeout}), then {@code settle} longer for late duplicates. */
    Output readCommitted(Predicate<Output> done, Duration timeout, Duration settle) {
        Output first = read(true, done, timeout);
        if (settle.isZero()) {
            return first;
        }
        int seen = first.size();
        return read(true, o -> false, settle).atLeast(seen);
    }

    private KafkaConsumer<byte[], byte[]> consumer(boolean committedOnly) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
        props.put(ConsumerConfig.GROUP_ID_CONFIG, name + "-reader-" + UUID.randomUUID());
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, committedOnly ? "read_committed" : "read_uncommitted");
        KafkaConsumer<byte[], byte[]> consumer =
                new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer());
        List<TopicPartition> partitions = new ArrayList<>();
        for (String topic : List.of(generations, errors, contexts)) {
            for (PartitionInfo info : consumer.partitionsFor(topic)) {
                partitions.add(new TopicPartition(topic, info.partition()));
            }
        }
        consumer.assign(partitions);
        consumer.seekToBeginning(partitions);
        return consumer;
    }

    /** What the job wrote to its three output topics, in the order read. */
    static final class Output {
        final List<Generation> generations = new ArrayList<>();
        final List<InferenceError> errors = new ArrayList<>();
        final List<ContextReady> contexts = new ArrayList<>();

        int size() {
            return generations.size() + errors.size() + contexts.size();
        }

        /** Generations answering {@code requestId}. */
        List<Generation> answers(String requestId) {
            return generations.stream().filter(g -> g.getRequestId().equals(requestId)).toList();
        }

        /** The one generation answering {@code requestId}; fails if there is none or more than one. */
        Generation answer(String requestId) {
            List<Generation> answers = answers(requestId);
            if (answers.size() != 1) {
                throw new AssertionError(answers.size() + " answers for " + requestId + "; output: " + this);
            }
            return answers.get(0);
        }

        boolean answered(String... requestIds) {
            for (String id : requestIds) {
                if (answers(id).isEmpty()) {
                    return false;
                }
            }
            return true;
        }

        List<ContextReady> ready(String tenant, String contextId) {
            return contexts.stream()
                    .filter(c -> c.getTenant().equals(tenant) && c.getContextId().equals(contextId)).toList();
        }

        private Output atLeast(int seen) {
            if (size() < seen) {
                throw new AssertionError("a second read saw fewer records (" + size() + ") than the first (" + seen + ")");
            }
            return this;
        }

        @Override
        public String toString() {
            return "generations=" + generations + ", errors=" + errors + ", contexts=" + contexts;
        }
    }

    // ---------------- records ----------------

    static Document document(String tenant, String id, int part, boolean last, String text) {
        return Document.newBuilder().setTenant(tenant).setDocumentId(id).setPart(part).setLast(last).setText(text).build();
    }

    /** A greedy prompt with 8 tokens at most. */
    static Prompt prompt(String requestId, String tenant, String contextId, PromptMode mode, String text) {
        return Prompt.newBuilder().setRequestId(requestId).setTenant(tenant).setContextId(contextId).setMode(mode)
                .setText(text).setMaxTokens(8).setTemperature(0f).build();
    }

    /** A sampled prompt (temperature 0.9, top-k 40) with an explicit seed, so any context id gives the same text. */
    static Prompt sampled(String requestId, String tenant, String contextId, PromptMode mode, String text, long seed) {
        return Prompt.newBuilder(prompt(requestId, tenant, contextId, mode, text))
                .setTemperature(0.9f).setTopK(40).setSeed(seed).build();
    }

    /** What a CONVERSATION turn after {@code previous} finds in its cache: the previous cache, prompt and answer. */
    static int cacheAfter(Generation previous) {
        int eos = previous.getFinishReason().name().equals("STOP") ? 1 : 0;
        return previous.getUsage().getCachedTokens() + previous.getUsage().getPromptTokens()
                + previous.getUsage().getGeneratedTokens() + eos;
    }
}
