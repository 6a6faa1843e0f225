package io.moestream.jobs;

import io.moestream.schemas.AvroCodec;
import org.apache.avro.specific.SpecificRecord;
import org.apache.flink.connector.kafka.lineage.DefaultKafkaDatasetFacet;
import org.apache.flink.connector.kafka.lineage.DefaultKafkaDatasetIdentifier;
import org.apache.flink.connector.kafka.lineage.KafkaDatasetFacet;
import org.apache.flink.connector.kafka.lineage.KafkaDatasetFacetProvider;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.kafka.clients.producer.ProducerRecord;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Optional;
import java.util.function.Function;

/**
 * Writes a record as Avro single-object encoding to one topic, keyed by a string derived from the
 * record (so all results of one context land in one partition, in order). Names its topic to the
 * sink ({@link KafkaDatasetFacetProvider}), which the pooling transaction naming needs: after a
 * failure it lists the open transactions that wrote to it.
 */
final class AvroRecordSerializer<T extends SpecificRecord> implements KafkaRecordSerializationSchema<T>,
        KafkaDatasetFacetProvider {
    private static final long serialVersionUID = 1L;

    private final String topic;
    private final AvroCodec<T> codec;
    private final SerializableKey<T> key;

    /** The key function; serializable because Flink ships the sink to the TaskManagers. */
    interface SerializableKey<T> extends Function<T, String>, java.io.Serializable {}

    AvroRecordSerializer(String topic, Class<T> type, SerializableKey<T> key) {
        this.topic = topic;
        this.codec = AvroCodec.of(type);
        this.key = key;
    }

    @Override
    public Optional<KafkaDatasetFacet> getKafkaDatasetFacet() {
        return Optional.of(new DefaultKafkaDatasetFacet(DefaultKafkaDatasetIdentifier.ofTopics(List.of(topic))));
    }

    @Override
    public ProducerRecord<byte[], byte[]> serialize(T record, KafkaSinkContext context, Long timestamp) {
        String k = key.apply(record);
        byte[] keyBytes = k == null ? null : k.getBytes(StandardCharsets.UTF_8);
        return new ProducerRecord<>(topic, null, timestamp, keyBytes, codec.encode(record));
    }
}
