package io.moestream.jobs.sql;

import io.moestream.schemas.AvroCodec;
import io.moestream.schemas.MalformedRecordException;
import java.io.IOException;
import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.types.logical.RowType;

/** Decodes one Kafka value (single-object encoding) into a row; see {@link MoeAvroFormatFactory}. */
final class MoeAvroDeserializationSchema implements DeserializationSchema<RowData> {

    private static final long serialVersionUID = 1L;

    private final AvroCodec<?> codec;
    private final RowType rowType;
    private final TypeInformation<RowData> producedType;
    private final boolean ignoreErrors;
    private transient AvroRowConverters.ToFlink reader;

    MoeAvroDeserializationSchema(AvroCodec<?> codec, RowType rowType, TypeInformation<RowData> producedType,
            boolean ignoreErrors) {
        this.codec = codec;
        this.rowType = rowType;
        this.producedType = producedType;
        this.ignoreErrors = ignoreErrors;
        AvroRowConverters.reader(codec.schema(), rowType); // checks the columns when the statement is planned
    }

    @Override
    public void open(InitializationContext context) {
        reader = AvroRowConverters.reader(codec.schema(), rowType);
    }

    @Override
    public RowData deserialize(byte[] message) throws IOException {
        if (reader == null) {
            open(null);
        }
        try {
            return (RowData) reader.convert(codec.decode(message));
        } catch (MalformedRecordException e) {
            if (ignoreErrors) {
                return null;
            }
            throw new IOException(MoeAvroFormatFactory.IDENTIFIER + ": " + e.getMessage()
                    + " (set '" + MoeAvroFormatFactory.IDENTIFIER + ".ignore-parse-errors' = 'true' to skip such records)", e);
        }
    }

    @Override
    public boolean isEndOfStream(RowData next) {
        return false;
    }

    @Override
    public TypeInformation<RowData> getProducedType() {
        return producedType;
    }
}
