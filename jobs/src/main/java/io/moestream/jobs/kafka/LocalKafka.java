package io.moestream.jobs.kafka;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import kafka.server.KafkaConfig;
import kafka.server.KafkaRaftServer;
import kafka.tools.StorageTool;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.utils.Time;
import org.apache.kafka.common.utils.Utils;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A single-node Kafka (KRaft broker and controller in one process) running inside this JVM, for
 * the demo, the {@code kafka} command and tests.
 *
 * <p>It writes a {@code server.properties} into a fresh temporary directory, formats the storage
 * with {@link StorageTool} (what {@code kafka-storage.sh format} runs) and starts
 * {@link KafkaRaftServer} (what {@code kafka-server-start.sh} runs) on 127.0.0.1. Only {@code kafka_2.13} is needed, no test
 * framework. Internal topics have replication factor 1, so transactions and consumer groups work
 * with the one broker. {@link #close()} stops the server and deletes the data directory.
 *
 * <pre>{@code
 * try (LocalKafka kafka = LocalKafka.start(0)) {
 *     kafka.createTopics(Topics.PROMPTS, Topics.GENERATIONS);
 *     String bootstrap = kafka.bootstrapServers();
 * }
 * }</pre>
 */
public final class LocalKafka implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(LocalKafka.class);

    private static final String HOST = "127.0.0.1";
    private static final int NODE_ID = 1;
    private static final Duration READY_TIMEOUT = Duration.ofSeconds(60);

    // configuration
    private final int defaultPartitions;
    private final Map<String, String> overrides;

    // runtime
    private Path dataDir;
    private KafkaRaftServer server;
    private int port = -1;

    private LocalKafka(int defaultPartitions, Map<String, String> overrides) {
        if (defaultPartitions < 1) {
            throw new IllegalArgumentException("partitions must be >= 1, got " + defaultPartitions);
        }
        this.defaultPartitions = defaultPartitions;
        this.overrides = Map.copyOf(overrides);
    }

    /**
     * Starts a broker whose topics get one partition unless told otherwise; returns when it
     * accepts clients.
     *
     * @param port client port on 127.0.0.1, 0 for any free port
     */
    public static LocalKafka start(int port) throws IOException {
        return start(port, 1, Map.of());
    }

    /**
     * Starts a broker; returns when it accepts clients.
     *
     * @param port client port on 127.0.0.1, 0 for any free port
     * @param defaultPartitions partitions of topics made by {@link #createTopics(String...)} and
     *     of auto-created topics
     * @param overrides broker properties ({@code server.properties} keys) that replace the defaults
     */
    public static LocalKafka start(int port, int defaultPartitions, Map<String, String> overrides) throws IOException {
        LocalKafka kafka = new LocalKafka(defaultPartitions, overrides);
        try {
            kafka.startServer(port);
        } catch (IOException | RuntimeException e) {
            kafka.close();
            throw e;
        }
        return kafka;
    }

    private void startServer(int port) throws IOException {
        long started = System.nanoTime();
        this.port = port == 0 ? freePort() : port;
        int controllerPort = freePort();
        dataDir = Files.createTempDirectory("moestream-kafka-");
        Properties properties = serverProperties(this.port, controllerPort, dataDir);
        format(properties, dataDir);
        server = new KafkaRaftServer(KafkaConfig.fromProps(properties, false), Time.SYSTEM);
        server.startup();
        awaitBroker();
        LOG.info("Kafka (KRaft, in-process) ready at bootstrap.servers={} in {} ms, data in {}",
                bootstrapServers(), TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started), dataDir);
    }

    /** {@code 127.0.0.1:PORT}. */
    public String bootstrapServers() {
        if (port < 0) {
            throw new IllegalStateException("not started");
        }
        return HOST + ":" + port;
    }

    /** Client port. */
    public int port() {
        return port;
    }

    /** Creates topics with the default partition count (existing ones are left as they are). */
    public void createTopics(String... names) {
        createTopics(defaultPartitions, List.of(names));
    }

    /** Creates topics with the default partition count (existing ones are left as they are). */
    public void createTopics(Collection<String> names) {
        createTopics(defaultPartitions, names);
    }

    /**
     * Creates topics (replication factor 1; existing ones are left as they are) and waits until
     * every partition has a leader, so a producer's first records are not lost to a topic that is
     * still being set up.
     */
    public void createTopics(int partitions, Collection<String> names) {
        List<NewTopic> topics = new ArrayList<>();
        for (String name : names) {
            topics.add(new NewTopic(name, partitions, (short) 1));
        }
        try (Admin admin = admin()) {
            for (Map.Entry<String, org.apache.kafka.common.KafkaFuture<Void>> created :
                    admin.createTopics(topics).values().entrySet()) {
                try {
                    created.getValue().get();
                } catch (ExecutionException e) {
                    if (!(e.getCause() instanceof TopicExistsException)) {
                        throw new IllegalStateException("cannot create topic " + created.getKey(), e.getCause());
                    }
                }
            }
            awaitLeaders(admin, names);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while creating topics", e);
        }
    }

    /** An admin client for this broker (close it). */
    public Admin admin() {
        Properties properties = new Properties();
        properties.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers());
        properties.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        return Admin.create(properties);
    }

    /** Stops the broker and deletes its data directory. */
    @Override
    public synchronized void close() {
        if (server != null) {
            try {
                server.shutdown();
                server.awaitShutdown();
            } finally {
                server = null;
            }
        }
        if (dataDir != null) {
            try {
                Utils.delete(dataDir.toFile());
            } catch (IOException e) {
                LOG.warn("could not delete Kafka data directory {}", dataDir, e);
            }
            dataDir = null;
        }
    }

    // what a server.properties for a one-node KRaft cluster on the loopback interface would say
    private Properties serverProperties(int clientPort, int controllerPort, Path dir) {
        Properties p = new Properties();
        p.put("process.roles", "broker,controller");
        p.put("node.id", Integer.toString(NODE_ID));
        p.put("controller.quorum.voters", NODE_ID + "@" + HOST + ":" + controllerPort);
        p.put("listeners", "PLAINTEXT://" + HOST + ":" + clientPort + ",CONTROLLER://" + HOST + ":" + controllerPort);
        p.put("advertised.listeners", "PLAINTEXT://" + HOST + ":" + clientPort);
        p.put("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT");
        p.put("controller.listener.names", "CONTROLLER");
        p.put("inter.broker.listener.name", "PLAINTEXT");
        p.put("log.dirs", dir.resolve("data").toString());
        p.put("metadata.log.dir", dir.resolve("metadata").toString());
        p.put("num.partitions", Integer.toString(defaultPartitions));
        // one broker: every internal topic with replication factor 1
        p.put("offsets.topic.replication.factor", "1");
        p.put("offsets.topic.num.partitions", "1");
        p.put("transaction.state.log.replication.factor", "1");
        p.put("transaction.state.log.min.isr", "1");
        p.put("transaction.state.log.num.partitions", "1");
        p.put("share.coordinator.state.topic.replication.factor", "1");
        p.put("share.coordinator.state.topic.min.isr", "1");
        p.put("group.initial.rebalance.delay.ms", "0");
        // Flink's Kafka sink asks for up to 1 h by default; the broker's default cap is 15 min
        p.put("transaction.max.timeout.ms", Long.toString(TimeUnit.HOURS.toMillis(1)));
        // small footprint: a laptop or a 2-core CI machine
        p.put("num.network.threads", "2");
        p.put("num.io.threads", "2");
        p.put("background.threads", "2");
        p.put("num.recovery.threads.per.data.dir", "1");
        p.put("log.cleaner.threads", "1");
        p.put("log.cleaner.dedupe.buffer.size", "2097152");
        p.putAll(overrides);
        return p;
    }

    // kafka-storage.sh format -t <cluster id> -c server.properties
    private static void format(Properties properties, Path dir) throws IOException {
        Path file = dir.resolve("server.properties");
        try (Writer writer = Files.newBufferedWriter(file, StandardCharsets.UTF_8)) {
            properties.store(writer, "moestream LocalKafka");
        }
        ByteArrayOutputStream output = new ByteArrayOutputStream();
        String[] args = {"format", "--cluster-id", Uuid.randomUuid().toString(), "--config", file.toString()};
        int exitCode = StorageTool.execute(args, new PrintStream(output, true, StandardCharsets.UTF_8));
        String printed = output.toString(StandardCharsets.UTF_8).trim();
        if (exitCode != 0) {
            throw new IOException("cannot format Kafka storage in " + dir + " (exit code " + exitCode + "): " + printed);
        }
        LOG.debug("{}", printed);
    }

    private void awaitBroker() throws IOException {
        long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
        try (Admin admin = admin()) {
            while (true) {
                try {
                    if (!admin.describeCluster().nodes().get(5, TimeUnit.SECONDS).isEmpty()) {
                        return;
                    }
                } catch (ExecutionException | java.util.concurrent.TimeoutException e) {
                    LOG.debug("broker not ready yet", e);
                }
                if (System.nanoTime() > deadline) {
                    throw new IOException("Kafka broker on " + bootstrapServers() + " not ready after " + READY_TIMEOUT);
                }
                Thread.sleep(100);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while waiting for the Kafka broker", e);
        }
    }

    private static void awaitLeaders(Admin admin, Collection<String> topics) throws InterruptedException {
        long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
        while (true) {
            try {
                boolean ready = true;
                for (TopicDescription topic : admin.describeTopics(topics).allTopicNames().get().values()) {
                    for (TopicPartitionInfo partition : topic.partitions()) {
                        ready &= partition.leader() != null && !partition.leader().isEmpty();
                    }
                }
                if (ready) {
                    return;
                }
            } catch (ExecutionException e) {
                LOG.debug("topics {} not described yet", topics, e);
            }
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("topics " + topics + " have no leader after " + READY_TIMEOUT);
            }
            Thread.sleep(50);
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getByName(HOST))) {
            socket.setReuseAddress(true);
            return socket.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException("no free port on " + HOST, e);
        }
    }
}
