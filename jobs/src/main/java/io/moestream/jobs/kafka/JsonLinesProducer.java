package io.moestream.jobs.kafka;

import io.moestream.schemas.AvroCodec;
import io.moestream.schemas.JsonAvro;
import io.moestream.schemas.MalformedRecordException;
import io.moestream.schemas.RecordType;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Sends JSON lines to a topic as single-object-encoded Avro records (the {@code produce} command).
 *
 * <p>Each non-blank line is one record whose fields are the Avro field names (see
 * {@link JsonAvro}). A line that does not fit the schema is reported with its line number and
 * skipped; the others are still sent. Every send is confirmed by the broker before
 * {@link #send} returns. In raw mode each line's bytes go out as they are (to try what the job
 * does with malformed input).
 */
public final class JsonLinesProducer {

    /** Outcome: records the broker acknowledged, lines that were not sent. */
    public record Result(int sent, int failed) {}

    private static final int MAX_IN_FLIGHT_CHECKS = 1000;

    private final Producer<byte[], byte[]> producer;
    private final String topic;
    private final RecordType type;
    private final AvroCodec<? extends SpecificRecord> codec;
    private final boolean raw;

    /**
     * @param type record type of the lines; ignored (may be null) when {@code raw}
     */
    public JsonLinesProducer(Producer<byte[], byte[]> producer, String topic, RecordType type, boolean raw) {
        this.producer = producer;
        this.topic = topic;
        this.type = type;
        this.codec = raw ? null : type.newCodec();
        this.raw = raw;
    }

    /** Producer settings: acks from all replicas, idempotent, bounded waits. */
    public static Properties producerProperties(String bootstrapServers) {
        Properties properties = new Properties();
        properties.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers);
        properties.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        properties.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        properties.put(ProducerConfig.ACKS_CONFIG, "all");
        properties.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        properties.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        properties.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "30000");
        properties.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "30000");
        properties.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
        return properties;
    }

    /** Creates a producer with {@link #producerProperties}. */
    public static Producer<byte[], byte[]> createProducer(String bootstrapServers) {
        return new KafkaProducer<>(producerProperties(bootstrapServers));
    }

    /** The record of one JSON line, as it will be sent. */
    public ProducerRecord<byte[], byte[]> toProducerRecord(String line) {
        if (raw) {
            return new ProducerRecord<>(topic, null, line.getBytes(StandardCharsets.UTF_8));
        }
        SpecificRecord record = JsonAvro.fromJson(line, type.schema());
        return new ProducerRecord<>(topic, RecordKeys.keyBytes(record), encode(codec, record));
    }

    @SuppressWarnings("unchecked")
    private static <T extends SpecificRecord> byte[] encode(AvroCodec<T> codec, SpecificRecord record) {
        return codec.encode((T) record);
    }

    /**
     * Sends every non-blank line, waits until the broker has acknowledged each, and reports bad
     * lines and failed sends on {@code err} as {@code line N: what is wrong}.
     */
    public Result send(BufferedReader lines, PrintWriter err) throws IOException {
        List<Pending> pending = new ArrayList<>();
        int sent = 0;
        int failed = 0;
        int lineNumber = 0;
        for (String line = lines.readLine(); line != null; line = lines.readLine()) {
            lineNumber++;
            if (line.isBlank()) {
                continue;
            }
            ProducerRecord<byte[], byte[]> record;
            try {
                record = toProducerRecord(line);
            } catch (MalformedRecordException e) {
                err.println("line " + lineNumber + ": " + e.getMessage());
                err.flush();
                failed++;
                continue;
            }
            pending.add(new Pending(lineNumber, producer.send(record)));
            if (pending.size() >= MAX_IN_FLIGHT_CHECKS) {
                int ok = confirm(pending, err);
                sent += ok;
                failed += pending.size() - ok;
                pending.clear();
            }
        }
        producer.flush();
        int ok = confirm(pending, err);
        return new Result(sent + ok, failed + pending.size() - ok);
    }

    private static int confirm(List<Pending> pending, PrintWriter err) {
        int ok = 0;
        for (Pending p : pending) {
            try {
                p.future.get();
                ok++;
            } catch (ExecutionException e) {
                err.println("line " + p.lineNumber + ": not sent: " + e.getCause());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                err.println("line " + p.lineNumber + ": interrupted before the broker confirmed it");
            }
        }
        err.flush();
        return ok;
    }

    private record Pending(int lineNumber, Future<RecordMetadata> future) {}
}
