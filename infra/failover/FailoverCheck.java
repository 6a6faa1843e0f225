import io.moestream.schemas.AvroCodec;
import io.moestream.schemas.Document;
import io.moestream.schemas.Generation;
import io.moestream.schemas.Prompt;
import io.moestream.schemas.PromptMode;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;

/**
 * The Kafka side of infra/cluster-failover-test.sh, run as a single-file program on the job jar's
 * class path ({@code java -cp moestream.jar infra/failover/FailoverCheck.java COMMAND ...}):
 *
 * <ul>
 *   <li>{@code topics BOOTSTRAP PARTITIONS TOPIC...} creates topics;
 *   <li>{@code produce BOOTSTRAP DOCUMENT_TOPIC PROMPT_TOPIC COUNT SEED [RATE]} sends a seeded mix of
 *       documents and COUNT prompts (STATELESS, DOCUMENT, CONVERSATION; greedy and seeded sampling),
 *       the prompts at RATE per second if given;
 *   <li>{@code await BOOTSTRAP TOPIC COUNT TIMEOUT_S} returns once TOPIC holds COUNT committed records;
 *   <li>{@code compare BOOTSTRAP EXPECTED_TOPIC ACTUAL_TOPIC COUNT TIMEOUT_S} reads both topics with
 *       {@code read_committed} and prints, as its last line, {@code lost=N duplicated=N mismatched=N}
 *       (exit status 1 when any is not 0).
 * </ul>
 */
public final class FailoverCheck {

    static final String[] TEXTS = {
        "The list type is", "To add an item to a list,", "A dictionary maps", "Exceptions are raised when",
        "The import statement", "Strings are", "A for loop", "The with statement", "Generators are",
        "Use the built-in function", "Classes provide", "A tuple is", "The return value of",
    };
    static final String[] DOCUMENT_PARTS = {
        "Lists are mutable sequences, typically used to store collections of homogeneous items. ",
        "Lists may be constructed in several ways: using a pair of square brackets to denote the empty list. ",
        "Dictionaries map hashable values to arbitrary objects. Mappings are mutable objects. ",
        "An exception is raised when an error is detected during execution. ",
        "The try statement specifies exception handlers and cleanup code for a group of statements. ",
        "Strings are immutable sequences of Unicode code points. ",
        "The for statement is used to iterate over the elements of a sequence. ",
        "A module is a file containing Python definitions and statements. ",
    };
    static final int TENANTS = 3;
    static final int DOCUMENTS = 6;
    static final int CONVERSATIONS = 60;

    public static void main(String[] args) throws Exception {
        switch (args[0]) {
            case "topics" -> topics(args[1], Integer.parseInt(args[2]), List.of(args).subList(3, args.length));
            case "produce" -> produce(args[1], args[2], args[3], Integer.parseInt(args[4]), Long.parseLong(args[5]),
                    args.length > 6 ? Double.parseDouble(args[6]) : 0);
            case "await" -> System.exit(await(args[1], args[2], Integer.parseInt(args[3]), Integer.parseInt(args[4])) ? 0 : 1);
            case "compare" -> System.exit(compare(args[1], args[2], args[3], Integer.parseInt(args[4]), Integer.parseInt(args[5])));
            default -> throw new IllegalArgumentException("unknown command " + args[0]);
        }
    }

    static void topics(String bootstrap, int partitions, List<String> names) throws Exception {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin admin = Admin.create(p)) {
            for (String name : names) {
                try {
                    admin.createTopics(List.of(new NewTopic(name, partitions, (short) 1))).all().get();
                } catch (ExecutionException e) {
                    if (!(e.getCause() instanceof TopicExistsException)) {
                        throw e;
                    }
                }
            }
        }
    }

    /** Sends the mix; with {@code rate} > 0 the prompts go out at that many per second (documents first, at once). */
    static void produce(String bootstrap, String documentTopic, String promptTopic, int count, long seed, double rate)
            throws Exception {
        Random random = new Random(seed);
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        int[] modes = new int[3];
        try (KafkaProducer<byte[], byte[]> producer =
                     new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
            List<Future<?>> sent = new ArrayList<>();
            for (int d = 0; d < DOCUMENTS; d++) {
                String tenant = "t" + (d % TENANTS);
                int parts = 1 + d % 2;
                for (int part = 0; part < parts; part++) {
                    Document doc = Document.newBuilder().setTenant(tenant).setDocumentId("doc" + d).setPart(part)
                            .setLast(part == parts - 1)
                            .setText(DOCUMENT_PARTS[(d + part) % DOCUMENT_PARTS.length]).build();
                    sent.add(producer.send(new ProducerRecord<>(documentTopic,
                            utf8(tenant + "/doc" + d), AvroCodec.forDocument().encode(doc))));
                }
            }
            long start = System.nanoTime();
            for (int i = 0; i < count; i++) {
                if (rate > 0) {
                    long due = start + (long) (i / rate * 1e9);
                    long wait = due - System.nanoTime();
                    if (wait > 0) {
                        Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
                    }
                }
                int kind = random.nextInt(10);
                Prompt.Builder b = Prompt.newBuilder().setRequestId(String.format("req-%05d", i))
                        .setText(TEXTS[random.nextInt(TEXTS.length)]).setMaxTokens(8);
                if (kind < 4) {
                    b.setMode(PromptMode.STATELESS).setTenant("t" + random.nextInt(TENANTS)).setContextId(null);
                    modes[0]++;
                } else if (kind < 7) {
                    int d = random.nextInt(DOCUMENTS);
                    b.setMode(PromptMode.DOCUMENT).setTenant("t" + (d % TENANTS)).setContextId("doc" + d);
                    modes[1]++;
                } else {
                    int c = random.nextInt(CONVERSATIONS);
                    b.setMode(PromptMode.CONVERSATION).setTenant("t" + (c % TENANTS)).setContextId("chat" + c);
                    modes[2]++;
                }
                // half greedy, half sampled: seeded explicitly or by the request id's hash
                if (random.nextBoolean()) {
                    b.setTemperature(0f);
                } else {
                    b.setTemperature(0.8f).setTopK(40).setTopP(0.95f);
                    if (random.nextBoolean()) {
                        b.setSeed(random.nextLong());
                    }
                }
                Prompt prompt = b.build();
                String key = prompt.getContextId() == null ? prompt.getRequestId()
                        : prompt.getTenant() + "/" + prompt.getContextId();
                sent.add(producer.send(new ProducerRecord<>(promptTopic, utf8(key), AvroCodec.forPrompt().encode(prompt))));
            }
            for (Future<?> f : sent) {
                f.get(); // every send confirmed, or this throws
            }
        }
        System.out.printf("sent %d documents and %d prompts (stateless=%d document=%d conversation=%d)%n",
                DOCUMENTS, count, modes[0], modes[1], modes[2]);
    }

    static boolean await(String bootstrap, String topic, int count, int timeoutSeconds) {
        long deadline = System.nanoTime() + Duration.ofSeconds(timeoutSeconds).toNanos();
        int seen = 0;
        try (KafkaConsumer<byte[], byte[]> consumer = consumer(bootstrap, topic)) {
            while (seen < count && System.nanoTime() < deadline) {
                seen += consumer.poll(Duration.ofMillis(500)).count();
            }
        }
        System.out.printf("%s: %d committed records%n", topic, seen);
        return seen >= count;
    }

    static int compare(String bootstrap, String expectedTopic, String actualTopic, int count, int timeoutSeconds) {
        long deadline = System.nanoTime() + Duration.ofSeconds(timeoutSeconds).toNanos();
        Map<String, Generation> expected = new HashMap<>();
        Map<String, List<Generation>> actual = new LinkedHashMap<>();
        try (KafkaConsumer<byte[], byte[]> ref = consumer(bootstrap, expectedTopic);
             KafkaConsumer<byte[], byte[]> out = consumer(bootstrap, actualTopic)) {
            while ((expected.size() < count || actual.size() < count) && System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : ref.poll(Duration.ofMillis(200))) {
                    Generation g = AvroCodec.forGeneration().decode(r.value());
                    expected.put(g.getRequestId(), g);
                }
                for (ConsumerRecord<byte[], byte[]> r : out.poll(Duration.ofMillis(200))) {
                    Generation g = AvroCodec.forGeneration().decode(r.value());
                    actual.computeIfAbsent(g.getRequestId(), k -> new ArrayList<>()).add(g);
                }
            }
            // a duplicate would be committed with a later checkpoint: keep reading a few intervals
            long settle = System.nanoTime() + Duration.ofSeconds(5).toNanos();
            while (System.nanoTime() < settle) {
                for (ConsumerRecord<byte[], byte[]> r : out.poll(Duration.ofMillis(200))) {
                    Generation g = AvroCodec.forGeneration().decode(r.value());
                    actual.computeIfAbsent(g.getRequestId(), k -> new ArrayList<>()).add(g);
                }
            }
        }
        int lost = 0, duplicated = 0, mismatched = 0, unexpected = 0;
        List<String> examples = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            String id = String.format("req-%05d", i);
            List<Generation> got = actual.getOrDefault(id, List.of());
            if (got.isEmpty()) {
                lost++;
                if (examples.size() < 10) examples.add("lost " + id);
                continue;
            }
            duplicated += got.size() - 1;
            if (got.size() > 1 && examples.size() < 10) examples.add("duplicated " + id + " x" + got.size());
            Generation want = expected.get(id);
            if (want == null || !want.getTokenIds().equals(got.get(0).getTokenIds())
                    || !want.getText().equals(got.get(0).getText())) {
                mismatched++;
                if (examples.size() < 10) {
                    examples.add("mismatched " + id + ": expected " + (want == null ? "(no reference answer)"
                            : quote(want.getText())) + ", got " + quote(got.get(0).getText()));
                }
            }
        }
        for (String id : actual.keySet()) {
            if (!id.matches("req-\\d{5}") || Integer.parseInt(id.substring(4)) >= count) {
                unexpected++;
            }
        }
        examples.forEach(e -> System.out.println("  " + e));
        System.out.printf("reference answers: %d of %d; answers: %d distinct request ids (%d unexpected)%n",
                expected.size(), count, actual.size(), unexpected);
        System.out.printf("lost=%d duplicated=%d mismatched=%d%n", lost, duplicated, mismatched);
        return lost + duplicated + mismatched + unexpected == 0 && expected.size() == count ? 0 : 1;
    }

    static KafkaConsumer<byte[], byte[]> consumer(String bootstrap, String topic) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, "failover-check-" + UUID.randomUUID());
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
        List<TopicPartition> partitions = new ArrayList<>();
        for (PartitionInfo info : consumer.partitionsFor(topic)) {
            partitions.add(new TopicPartition(topic, info.partition()));
        }
        consumer.assign(partitions);
        consumer.seekToBeginning(partitions);
        return consumer;
    }

    static String quote(String s) {
        return "\"" + s.replace("\n", "\\n") + "\"";
    }

    static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
