package io.moestream.operators;

import java.util.Arrays;
import java.util.Objects;

/**
 * An undecoded input record with its source coordinates, so that a record that cannot be decoded
 * becomes an {@code InferenceError} naming where it came from instead of a failed job.
 *
 * <p>A Flink POJO (public fields, public no-argument constructor). Coordinates are unknown when
 * {@code topic} is {@code null}; {@code partition} and {@code offset} are then -1.
 */
public class RawRecord {

    public String topic;
    public int partition = -1;
    public long offset = -1;
    public byte[] value;

    public RawRecord() {}

    public RawRecord(String topic, int partition, long offset, byte[] value) {
        this.topic = topic;
        this.partition = partition;
        this.offset = offset;
        this.value = value;
    }

    /** A record without source coordinates. */
    public static RawRecord of(byte[] value) {
        return new RawRecord(null, -1, -1, value);
    }

    /** Whether topic, partition and offset are known. */
    public boolean hasCoordinates() {
        return topic != null;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof RawRecord r && partition == r.partition && offset == r.offset
                && Objects.equals(topic, r.topic) && Arrays.equals(value, r.value);
    }

    @Override
    public int hashCode() {
        return Objects.hash(topic, partition, offset) * 31 + Arrays.hashCode(value);
    }

    @Override
    public String toString() {
        return "RawRecord[" + (hasCoordinates() ? topic + "-" + partition + "@" + offset : "no source")
                + ", " + (value == null ? "null" : value.length + " bytes") + "]";
    }
}
