package io.moestream.jobs.sql;

import io.moestream.jobs.WriterSchemas;
import io.moestream.schemas.AvroCodec;
import io.moestream.schemas.RecordType;
import java.nio.file.Path;
import java.util.Set;
import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.api.common.serialization.SerializationSchema;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.connector.ChangelogMode;
import org.apache.flink.table.connector.format.DecodingFormat;
import org.apache.flink.table.connector.format.EncodingFormat;
import org.apache.flink.table.connector.sink.DynamicTableSink;
import org.apache.flink.table.connector.source.DynamicTableSource;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.factories.DeserializationFormatFactory;
import org.apache.flink.table.factories.DynamicTableFactory;
import org.apache.flink.table.factories.FactoryUtil;
import org.apache.flink.table.factories.SerializationFormatFactory;
import org.apache.flink.table.types.DataType;
import org.apache.flink.table.types.logical.RowType;

/**
 * The {@code moestream-avro} SQL format: our records on Kafka as Avro single-object encoding
 * ({@code C3 01}, CRC-64-AVRO fingerprint, Avro binary; docs/wire-format.md), read and written with
 * the {@link AvroCodec} of the record type {@code moestream-avro.record-type} names. Table columns
 * are the record's fields by name (any subset when reading; every field without a default when
 * writing). See docs/sql.md.
 */
public final class MoeAvroFormatFactory implements DeserializationFormatFactory, SerializationFormatFactory {

    public static final String IDENTIFIER = "moestream-avro";

    public static final ConfigOption<String> RECORD_TYPE = ConfigOptions.key("record-type").stringType().noDefaultValue()
            .withDescription("The record type of the topic: " + RecordType.cliNames() + ".");

    public static final ConfigOption<String> WRITER_SCHEMAS_DIR = ConfigOptions.key("writer-schemas-dir").stringType()
            .noDefaultValue()
            .withDescription("A folder of older Prompt/Document writer schemas (*.avsc) to read, as moestream.schemas.writer-dir.");

    public static final ConfigOption<Boolean> IGNORE_PARSE_ERRORS = ConfigOptions.key("ignore-parse-errors").booleanType()
            .defaultValue(false)
            .withDescription("Skip records that are not a readable record of the type instead of failing the job.");

    @Override
    public String factoryIdentifier() {
        return IDENTIFIER;
    }

    @Override
    public Set<ConfigOption<?>> requiredOptions() {
        return Set.of(RECORD_TYPE);
    }

    @Override
    public Set<ConfigOption<?>> optionalOptions() {
        return Set.of(WRITER_SCHEMAS_DIR, IGNORE_PARSE_ERRORS);
    }

    @Override
    public DecodingFormat<DeserializationSchema<RowData>> createDecodingFormat(DynamicTableFactory.Context context,
            ReadableConfig options) {
        FactoryUtil.validateFactoryOptions(this, options);
        AvroCodec<?> codec = codec(options);
        boolean ignoreErrors = options.get(IGNORE_PARSE_ERRORS);
        return new DecodingFormat<>() {
            @Override
            public DeserializationSchema<RowData> createRuntimeDecoder(DynamicTableSource.Context ctx, DataType physical) {
                RowType rowType = (RowType) physical.getLogicalType();
                return new MoeAvroDeserializationSchema(codec, rowType, ctx.createTypeInformation(physical), ignoreErrors);
            }

            @Override
            public ChangelogMode getChangelogMode() {
                return ChangelogMode.insertOnly();
            }
        };
    }

    @Override
    public EncodingFormat<SerializationSchema<RowData>> createEncodingFormat(DynamicTableFactory.Context context,
            ReadableConfig options) {
        FactoryUtil.validateFactoryOptions(this, options);
        AvroCodec<?> codec = codec(options);
        return new EncodingFormat<>() {
            @Override
            public SerializationSchema<RowData> createRuntimeEncoder(DynamicTableSink.Context ctx, DataType physical) {
                return new MoeAvroSerializationSchema(codec, (RowType) physical.getLogicalType());
            }

            @Override
            public ChangelogMode getChangelogMode() {
                return ChangelogMode.insertOnly();
            }
        };
    }

    private static AvroCodec<?> codec(ReadableConfig options) {
        RecordType type;
        try {
            type = RecordType.parse(options.get(RECORD_TYPE));
        } catch (IllegalArgumentException e) {
            throw new ValidationException(IDENTIFIER + "." + RECORD_TYPE.key() + ": " + e.getMessage());
        }
        String dir = options.getOptional(WRITER_SCHEMAS_DIR).orElse(null);
        if (dir == null) {
            return type.newCodec();
        }
        WriterSchemas older;
        try {
            older = WriterSchemas.load(Path.of(dir));
        } catch (IllegalArgumentException e) {
            throw new ValidationException(IDENTIFIER + "." + WRITER_SCHEMAS_DIR.key() + ": " + e.getMessage(), e);
        }
        return switch (type) {
            case PROMPT -> older.promptCodec();
            case DOCUMENT -> older.documentCodec();
            default -> throw new ValidationException(IDENTIFIER + "." + WRITER_SCHEMAS_DIR.key()
                    + " holds Prompt and Document schemas; record-type " + type.cliName() + " has none");
        };
    }
}
