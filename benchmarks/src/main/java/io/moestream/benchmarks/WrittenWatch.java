package io.moestream.benchmarks;

import io.moestream.jobs.kafka.LocalKafka;
import io.moestream.schemas.AvroCodec;
import io.moestream.schemas.Generation;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ConcurrentHashMap;

/**
 * When each answer was <em>written</em> to the generations topic: a {@code read_uncommitted}
 * consumer sees records inside still-open Kafka transactions, so written-to-visible is the wait
 * exactly-once adds (the checkpoint after the answer, then the sink's commit). Watches from the
 * topic's end at {@link #start}, so earlier answers do not count.
 */
final class WrittenWatch implements AutoCloseable {

    private final KafkaConsumer<byte[], byte[]> consumer;
    private final AvroCodec<Generation> codec = AvroCodec.forGeneration();
    private final Map<String, Long> writtenAt = new ConcurrentHashMap<>();
    private final Thread thread;
    private volatile boolean stopped;

    private WrittenWatch(KafkaConsumer<byte[], byte[]> consumer) {
        this.consumer = consumer;
        this.thread = new Thread(this::poll, "pipeline-bench-written-watch");
        thread.setDaemon(true);
    }

    static WrittenWatch start(LocalKafka kafka, String topic) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
        p.put(ConsumerConfig.GROUP_ID_CONFIG, "pipeline-bench-written");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_uncommitted");
        KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
        List<TopicPartition> partitions = consumer.partitionsFor(topic).stream()
                .map(i -> new TopicPartition(i.topic(), i.partition())).toList();
        consumer.assign(partitions);
        consumer.seekToEnd(partitions);
        partitions.forEach(consumer::position); // resolve the end now, before the measured prompts are sent
        WrittenWatch watch = new WrittenWatch(consumer);
        watch.thread.start();
        return watch;
    }

    /** {@code System.nanoTime()} at which each request's answer was first seen, written but maybe not committed. */
    Map<String, Long> writtenAt() {
        return writtenAt;
    }

    private void poll() {
        while (!stopped) {
            for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(20))) {
                long now = System.nanoTime();
                writtenAt.putIfAbsent(codec.decode(r.value()).getRequestId(), now);
            }
        }
        consumer.close();
    }

    @Override
    public void close() throws InterruptedException {
        stopped = true;
        thread.join(10_000);
    }
}
