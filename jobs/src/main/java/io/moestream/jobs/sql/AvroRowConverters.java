package io.moestream.jobs.sql;

import java.io.Serializable;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericRecordBuilder;
import org.apache.avro.generic.IndexedRecord;
import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.data.ArrayData;
import org.apache.flink.table.data.GenericArrayData;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.types.logical.ArrayType;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.RowType;

/**
 * Converts between a table's rows and records of one of our Avro schemas, <em>by field name</em>:
 * a table column reads or writes the Avro field of the same name, so a table may declare any subset
 * of the fields in any order. Types: {@code string} and enums as STRING, {@code int} INT,
 * {@code long} BIGINT, {@code float} FLOAT, {@code double} DOUBLE, {@code boolean} BOOLEAN,
 * {@code bytes} BYTES, arrays as ARRAY, records as ROW, {@code ["null", X]} as a nullable X.
 * Building a converter checks every column against the schema, so a mismatch fails when the
 * statement is planned, naming the column.
 */
final class AvroRowConverters {

    private AvroRowConverters() {}

    /** Avro value to Flink internal value. */
    interface ToFlink extends Serializable {
        Object convert(Object avro);
    }

    /** Flink internal value to Avro value (generic representation). */
    interface ToAvro extends Serializable {
        Object convert(Object flink);
    }

    /** Reads a record of {@code schema} into a row of {@code rowType}. */
    static ToFlink reader(Schema schema, RowType rowType) {
        return rowReader(schema, rowType, "");
    }

    /**
     * Writes a row of {@code rowType} as a record of {@code schema}; fields the table lacks take their
     * defaults, and a field without a default that the table lacks is refused.
     */
    static ToAvro writer(Schema schema, RowType rowType) {
        return rowWriter(schema, rowType, "");
    }

    private static ToFlink rowReader(Schema schema, RowType rowType, String path) {
        List<String> names = rowType.getFieldNames();
        int[] positions = new int[names.size()];
        ToFlink[] fields = new ToFlink[names.size()];
        for (int i = 0; i < names.size(); i++) {
            Schema.Field field = field(schema, names.get(i), path);
            positions[i] = field.pos();
            fields[i] = valueReader(field.schema(), rowType.getTypeAt(i), path + names.get(i));
        }
        return avro -> {
            IndexedRecord record = (IndexedRecord) avro;
            GenericRowData row = new GenericRowData(fields.length);
            for (int i = 0; i < fields.length; i++) {
                row.setField(i, fields[i].convert(record.get(positions[i])));
            }
            return row;
        };
    }

    private static ToFlink valueReader(Schema schema, LogicalType type, String path) {
        Schema s = nonNull(schema);
        ToFlink inner = switch (s.getType()) {
            case STRING, ENUM -> {
                expect(type, path, s, LogicalTypeFamily.STRING);
                yield v -> StringData.fromString(v.toString());
            }
            case INT -> expectSame(type, path, s, LogicalTypeFamily.INT);
            case LONG -> expectSame(type, path, s, LogicalTypeFamily.BIGINT);
            case FLOAT -> expectSame(type, path, s, LogicalTypeFamily.FLOAT);
            case DOUBLE -> expectSame(type, path, s, LogicalTypeFamily.DOUBLE);
            case BOOLEAN -> expectSame(type, path, s, LogicalTypeFamily.BOOLEAN);
            case BYTES -> {
                expect(type, path, s, LogicalTypeFamily.BYTES);
                yield v -> {
                    ByteBuffer b = ((ByteBuffer) v).duplicate();
                    byte[] out = new byte[b.remaining()];
                    b.get(out);
                    return out;
                };
            }
            case ARRAY -> {
                expect(type, path, s, LogicalTypeFamily.ARRAY);
                ToFlink element = valueReader(s.getElementType(), ((ArrayType) type).getElementType(), path + "[]");
                yield v -> {
                    List<?> list = (List<?>) v;
                    Object[] out = new Object[list.size()];
                    for (int i = 0; i < out.length; i++) {
                        out[i] = element.convert(list.get(i));
                    }
                    return new GenericArrayData(out);
                };
            }
            case RECORD -> {
                expect(type, path, s, LogicalTypeFamily.ROW);
                yield rowReader(s, (RowType) type, path + ".");
            }
            default -> throw new ValidationException("moestream-avro: column '" + path + "': Avro type " + s.getType()
                    + " is not supported");
        };
        return v -> v == null ? null : inner.convert(v);
    }

    private static ToAvro rowWriter(Schema schema, RowType rowType, String path) {
        List<String> names = rowType.getFieldNames();
        ToAvro[] fields = new ToAvro[names.size()];
        RowData.FieldGetter[] getters = new RowData.FieldGetter[names.size()];
        for (int i = 0; i < names.size(); i++) {
            Schema.Field field = field(schema, names.get(i), path);
            fields[i] = valueWriter(field.schema(), rowType.getTypeAt(i), path + names.get(i));
            getters[i] = RowData.createFieldGetter(rowType.getTypeAt(i), i);
        }
        for (Schema.Field field : schema.getFields()) {
            if (!names.contains(field.name()) && !field.hasDefaultValue()) {
                throw new ValidationException("moestream-avro: the table has no column '" + path + field.name() + "', but "
                        + schema.getFullName() + " requires it (no default); declare it (fields: " + fieldNames(schema) + ")");
            }
        }
        String[] fieldNames = names.toArray(new String[0]);
        String schemaJson = schema.toString();
        return new ToAvro() {
            private transient Schema parsed;

            @Override
            public Object convert(Object flink) {
                if (parsed == null) {
                    parsed = new Schema.Parser().parse(schemaJson);
                }
                RowData row = (RowData) flink;
                GenericRecordBuilder builder = new GenericRecordBuilder(parsed);
                for (int i = 0; i < fields.length; i++) {
                    builder.set(fieldNames[i], fields[i].convert(getters[i].getFieldOrNull(row)));
                }
                return builder.build();
            }
        };
    }

    private static ToAvro valueWriter(Schema schema, LogicalType type, String path) {
        Schema s = nonNull(schema);
        boolean nullable = s != schema;
        ToAvro inner = switch (s.getType()) {
            case STRING -> {
                expect(type, path, s, LogicalTypeFamily.STRING);
                yield Object::toString;
            }
            case ENUM -> {
                expect(type, path, s, LogicalTypeFamily.STRING);
                List<String> symbols = new ArrayList<>(s.getEnumSymbols());
                yield v -> { // the symbol; the specific record's copy makes it the Java enum
                    String symbol = v.toString();
                    if (!symbols.contains(symbol)) {
                        throw new IllegalArgumentException("moestream-avro: column '" + path + "' is '" + symbol
                                + "', not one of " + symbols);
                    }
                    return symbol;
                };
            }
            case INT -> expectSameOut(type, path, s, LogicalTypeFamily.INT);
            case LONG -> expectSameOut(type, path, s, LogicalTypeFamily.BIGINT);
            case FLOAT -> expectSameOut(type, path, s, LogicalTypeFamily.FLOAT);
            case DOUBLE -> expectSameOut(type, path, s, LogicalTypeFamily.DOUBLE);
            case BOOLEAN -> expectSameOut(type, path, s, LogicalTypeFamily.BOOLEAN);
            case BYTES -> {
                expect(type, path, s, LogicalTypeFamily.BYTES);
                yield v -> ByteBuffer.wrap((byte[]) v);
            }
            case ARRAY -> {
                expect(type, path, s, LogicalTypeFamily.ARRAY);
                LogicalType elementType = ((ArrayType) type).getElementType();
                ToAvro element = valueWriter(s.getElementType(), elementType, path + "[]");
                ArrayData.ElementGetter getter = ArrayData.createElementGetter(elementType);
                yield v -> {
                    ArrayData array = (ArrayData) v;
                    List<Object> out = new ArrayList<>(array.size());
                    for (int i = 0; i < array.size(); i++) {
                        out.add(element.convert(getter.getElementOrNull(array, i)));
                    }
                    return out;
                };
            }
            case RECORD -> {
                expect(type, path, s, LogicalTypeFamily.ROW);
                yield rowWriter(s, (RowType) type, path + ".");
            }
            default -> throw new ValidationException("moestream-avro: column '" + path + "': Avro type " + s.getType()
                    + " is not supported");
        };
        return v -> {
            if (v == null) {
                if (!nullable) {
                    throw new IllegalArgumentException("moestream-avro: column '" + path + "' is null, but "
                            + schema + " is not nullable");
                }
                return null;
            }
            return inner.convert(v);
        };
    }

    /** The Flink type families a column may have per Avro type. */
    private enum LogicalTypeFamily { STRING, INT, BIGINT, FLOAT, DOUBLE, BOOLEAN, BYTES, ARRAY, ROW }

    private static void expect(LogicalType type, String path, Schema avro, LogicalTypeFamily family) {
        boolean ok = switch (family) {
            case STRING -> type.is(org.apache.flink.table.types.logical.LogicalTypeFamily.CHARACTER_STRING);
            case BYTES -> type.is(org.apache.flink.table.types.logical.LogicalTypeFamily.BINARY_STRING);
            case INT -> type.is(org.apache.flink.table.types.logical.LogicalTypeRoot.INTEGER);
            case BIGINT -> type.is(org.apache.flink.table.types.logical.LogicalTypeRoot.BIGINT);
            case FLOAT -> type.is(org.apache.flink.table.types.logical.LogicalTypeRoot.FLOAT);
            case DOUBLE -> type.is(org.apache.flink.table.types.logical.LogicalTypeRoot.DOUBLE);
            case BOOLEAN -> type.is(org.apache.flink.table.types.logical.LogicalTypeRoot.BOOLEAN);
            case ARRAY -> type.is(org.apache.flink.table.types.logical.LogicalTypeRoot.ARRAY);
            case ROW -> type.is(org.apache.flink.table.types.logical.LogicalTypeRoot.ROW);
        };
        if (!ok) {
            throw new ValidationException("moestream-avro: column '" + path + "' is " + type.asSummaryString()
                    + ", but the Avro field is " + avro.getType().getName() + " (declare it as " + family + ")");
        }
    }

    private static ToFlink expectSame(LogicalType type, String path, Schema avro, LogicalTypeFamily family) {
        expect(type, path, avro, family);
        return v -> v;
    }

    private static ToAvro expectSameOut(LogicalType type, String path, Schema avro, LogicalTypeFamily family) {
        expect(type, path, avro, family);
        return v -> v;
    }

    private static Schema.Field field(Schema schema, String name, String path) {
        Schema.Field field = schema.getField(name);
        if (field == null) {
            throw new ValidationException("moestream-avro: column '" + path + name + "' is not a field of "
                    + schema.getFullName() + " (fields: " + fieldNames(schema) + ")");
        }
        return field;
    }

    private static String fieldNames(Schema schema) {
        List<String> names = new ArrayList<>();
        for (Schema.Field f : schema.getFields()) {
            names.add(f.name());
        }
        return String.join(", ", names);
    }

    /** X for {@code ["null", X]} (or {@code [X, "null"]}), else the schema itself. */
    private static Schema nonNull(Schema schema) {
        if (schema.getType() != Schema.Type.UNION) {
            return schema;
        }
        List<Schema> types = schema.getTypes();
        if (types.size() == 2 && types.get(0).getType() == Schema.Type.NULL) {
            return types.get(1);
        }
        if (types.size() == 2 && types.get(1).getType() == Schema.Type.NULL) {
            return types.get(0);
        }
        throw new ValidationException("moestream-avro: union " + schema + " is not supported (only [\"null\", X])");
    }
}
