package io.moestream.jobs.kafka;

import io.moestream.schemas.AvroCodec;
import io.moestream.schemas.JsonAvro;
import io.moestream.schemas.MalformedRecordException;
import io.moestream.schemas.RecordType;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * Reads single-object-encoded Avro records from every partition of a topic and prints each as
 * one JSON line (the {@code consume} command). Only committed records are read
 * ({@code isolation.level=read_committed}); no consumer group is joined and no offsets are
 * committed, so it never disturbs the job's consumers.
 */
public final class JsonLinesConsumer {

    /** Outcome: records printed, records that could not be decoded. */
    public record Result(int printed, int malformed) {}

    private final Consumer<byte[], byte[]> consumer;
    private final String topic;
    private final AvroCodec<? extends SpecificRecord> codec;

    public JsonLinesConsumer(Consumer<byte[], byte[]> consumer, String topic, RecordType type) {
        this.consumer = consumer;
        this.topic = topic;
        this.codec = type.newCodec();
    }

    /** Consumer settings: read_committed, no group, no auto-commit. */
    public static Properties consumerProperties(String bootstrapServers) {
        Properties properties = new Properties();
        properties.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers);
        properties.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        properties.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        properties.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        properties.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        properties.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "15000");
        return properties;
    }

    public static Consumer<byte[], byte[]> createConsumer(String bootstrapServers) {
        return new KafkaConsumer<>(consumerProperties(bootstrapServers));
    }

    /**
     * Prints records until {@code max} have been read (0 = no limit) or none arrived for
     * {@code idle}. Undecodable records are reported on {@code err} with partition, offset and
     * the reason, and count towards {@code max}.
     *
     * @throws IllegalStateException if the topic does not exist within {@code idle}
     */
    public Result consume(boolean fromBeginning, int max, Duration idle, PrintWriter out, PrintWriter err) {
        List<TopicPartition> partitions = partitions(idle);
        consumer.assign(partitions);
        if (fromBeginning) {
            consumer.seekToBeginning(partitions);
        } else {
            consumer.seekToEnd(partitions);
        }
        int printed = 0;
        int malformed = 0;
        long lastRecord = System.nanoTime();
        while (max <= 0 || printed + malformed < max) {
            boolean any = false;
            for (ConsumerRecord<byte[], byte[]> record : consumer.poll(Duration.ofMillis(200))) {
                any = true;
                try {
                    out.println(JsonAvro.toJson(codec.decode(record.value())));
                    printed++;
                } catch (MalformedRecordException e) {
                    err.println("partition " + record.partition() + " offset " + record.offset() + ": " + e.getMessage());
                    malformed++;
                }
                if (max > 0 && printed + malformed >= max) {
                    break;
                }
            }
            out.flush();
            err.flush();
            if (any) {
                lastRecord = System.nanoTime();
            } else if (System.nanoTime() - lastRecord > idle.toNanos()) {
                break;
            }
        }
        return new Result(printed, malformed);
    }

    private List<TopicPartition> partitions(Duration wait) {
        long deadline = System.nanoTime() + wait.toNanos();
        while (true) {
            List<PartitionInfo> infos = consumer.partitionsFor(topic);
            if (infos != null && !infos.isEmpty()) {
                List<TopicPartition> partitions = new ArrayList<>();
                for (PartitionInfo info : infos) {
                    partitions.add(new TopicPartition(topic, info.partition()));
                }
                return partitions;
            }
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("topic '" + topic + "' does not exist");
            }
            try {
                Thread.sleep(200);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while looking up topic '" + topic + "'", e);
            }
        }
    }
}
