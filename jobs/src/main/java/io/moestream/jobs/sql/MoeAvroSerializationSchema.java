package io.moestream.jobs.sql;

import io.moestream.schemas.AvroCodec;
import org.apache.flink.api.common.serialization.SerializationSchema;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.types.logical.RowType;
import org.apache.avro.specific.SpecificData;
import org.apache.avro.specific.SpecificRecord;

/** Encodes a row as our record in single-object encoding; see {@link MoeAvroFormatFactory}. */
final class MoeAvroSerializationSchema implements SerializationSchema<RowData> {

    private static final long serialVersionUID = 1L;

    private final AvroCodec<?> codec;
    private final RowType rowType;
    private transient AvroRowConverters.ToAvro writer;

    MoeAvroSerializationSchema(AvroCodec<?> codec, RowType rowType) {
        this.codec = codec;
        this.rowType = rowType;
        AvroRowConverters.writer(codec.schema(), rowType); // checks the columns when the statement is planned
    }

    @Override
    public void open(InitializationContext context) {
        writer = AvroRowConverters.writer(codec.schema(), rowType);
    }

    @Override
    public byte[] serialize(RowData row) {
        if (writer == null) {
            open(null);
        }
        return encode(codec, writer.convert(row));
    }

    /** The generic record as the codec's specific class (enums, nested records), then encoded. */
    @SuppressWarnings("unchecked")
    private static <T extends SpecificRecord> byte[] encode(AvroCodec<T> codec, Object generic) {
        T record = (T) SpecificData.getForClass(codec.type()).deepCopy(codec.schema(), generic);
        return codec.encode(record);
    }
}
