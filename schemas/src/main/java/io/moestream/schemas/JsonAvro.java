package io.moestream.schemas;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericContainer;
import org.apache.avro.generic.GenericFixed;
import org.apache.avro.generic.IndexedRecord;
import org.apache.avro.specific.SpecificData;
import org.apache.avro.specific.SpecificRecord;

/**
 * Converts between one JSON object and a generated Avro record, in the plain JSON a person or
 * another language writes, not Avro's own JSON encoding:
 *
 * <ul>
 *   <li>JSON fields are the Avro field names; fields with a default may be omitted, unknown
 *       fields are rejected;
 *   <li>nullable unions take the plain value or {@code null} (no {@code {"string": ...}}
 *       wrapping);
 *   <li>enums are their symbol as a string; {@code bytes} and {@code fixed} are base64 strings.
 * </ul>
 *
 * <p>Errors are {@link MalformedRecordException}s that name the field, e.g.
 * {@code field 'max_tokens' must be an int, got "ten"}.
 */
public final class JsonAvro {

    private static final ObjectMapper MAPPER = new ObjectMapper();
    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;

    private JsonAvro() {}

    /** Parses one JSON object into a record of the given generated class. */
    public static <T extends SpecificRecord> T fromJson(String json, Class<T> type) {
        return type.cast(fromJson(json, SpecificData.get().getSchema(type)));
    }

    /** Parses one JSON object into a record of the given (generated) record schema. */
    public static SpecificRecord fromJson(String json, Schema schema) {
        JsonNode node;
        try {
            node = MAPPER.readTree(json);
        } catch (JsonProcessingException e) {
            throw new MalformedRecordException("not valid JSON: " + e.getOriginalMessage()
                    + " (line " + e.getLocation().getLineNr() + ", column " + e.getLocation().getColumnNr() + ")");
        }
        return fromJson(node, schema);
    }

    /** Converts a parsed JSON object into a record of the given (generated) record schema. */
    public static SpecificRecord fromJson(JsonNode node, Schema schema) {
        if (schema.getType() != Schema.Type.RECORD) {
            throw new IllegalArgumentException("not a record schema: " + schema.getFullName());
        }
        if (node == null || !node.isObject()) {
            throw new MalformedRecordException("expected a JSON object with the fields of " + schema.getName()
                    + " (" + fieldNames(schema) + "), got " + describe(node));
        }
        SpecificData model = SpecificData.getForSchema(schema);
        return (SpecificRecord) readRecord(node, schema, model, "");
    }

    /** The record as one line of JSON. */
    public static String toJson(GenericContainer record) {
        try {
            return MAPPER.writeValueAsString(toJsonNode(record));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot write JSON", e);
        }
    }

    /** The record as a JSON tree (see the class comment for the mapping). */
    public static JsonNode toJsonNode(GenericContainer record) {
        return write(record, record.getSchema());
    }

    // ---- JSON -> Avro

    private static Object readRecord(JsonNode node, Schema schema, SpecificData model, String path) {
        for (Iterator<String> names = node.fieldNames(); names.hasNext(); ) {
            String name = names.next();
            if (schema.getField(name) == null) {
                throw new MalformedRecordException("unknown field '" + path + name + "' (" + schema.getName()
                        + " has " + fieldNames(schema) + ")");
            }
        }
        IndexedRecord record = (IndexedRecord) model.newRecord(null, schema);
        for (Schema.Field field : schema.getFields()) {
            String fieldPath = path + field.name();
            JsonNode value = node.get(field.name());
            if (value == null) {
                if (!field.hasDefaultValue()) {
                    throw new MalformedRecordException("missing required field '" + fieldPath + "'");
                }
                record.put(field.pos(), model.deepCopy(field.schema(), model.getDefaultValue(field)));
            } else {
                record.put(field.pos(), read(value, field.schema(), model, fieldPath));
            }
        }
        return record;
    }

    private static Object read(JsonNode node, Schema schema, SpecificData model, String path) {
        switch (schema.getType()) {
            case NULL:
                if (node.isNull()) {
                    return null;
                }
                throw mismatch(path, "null", node);
            case BOOLEAN:
                if (node.isBoolean()) {
                    return node.booleanValue();
                }
                throw mismatch(path, "a boolean (true or false)", node);
            case INT:
                if (node.isIntegralNumber() && node.canConvertToInt()) {
                    return node.intValue();
                }
                throw mismatch(path, "an int", node);
            case LONG:
                if (node.isIntegralNumber() && node.canConvertToLong()) {
                    return node.longValue();
                }
                throw mismatch(path, "a long", node);
            case FLOAT:
                if (node.isNumber()) {
                    return node.floatValue();
                }
                throw mismatch(path, "a number (float)", node);
            case DOUBLE:
                if (node.isNumber()) {
                    return node.doubleValue();
                }
                throw mismatch(path, "a number (double)", node);
            case STRING:
                if (node.isTextual()) {
                    return node.textValue();
                }
                throw mismatch(path, "a string", node);
            case BYTES:
                return ByteBuffer.wrap(base64(node, path));
            case FIXED: {
                byte[] bytes = base64(node, path);
                if (bytes.length != schema.getFixedSize()) {
                    throw new MalformedRecordException("field '" + path + "' must be " + schema.getFixedSize()
                            + " bytes (base64), got " + bytes.length);
                }
                return model.createFixed(null, bytes, schema);
            }
            case ENUM:
                if (node.isTextual() && schema.hasEnumSymbol(node.textValue())) {
                    return model.createEnum(node.textValue(), schema);
                }
                throw mismatch(path, "one of " + String.join(", ", schema.getEnumSymbols()), node);
            case ARRAY: {
                if (!node.isArray()) {
                    throw mismatch(path, "an array", node);
                }
                List<Object> items = new ArrayList<>(node.size());
                for (int i = 0; i < node.size(); i++) {
                    items.add(read(node.get(i), schema.getElementType(), model, path + "[" + i + "]"));
                }
                return items;
            }
            case MAP: {
                if (!node.isObject()) {
                    throw mismatch(path, "an object (map)", node);
                }
                Map<String, Object> map = new LinkedHashMap<>();
                node.fields().forEachRemaining(entry -> map.put(entry.getKey(),
                        read(entry.getValue(), schema.getValueType(), model, path + "." + entry.getKey())));
                return map;
            }
            case RECORD:
                if (!node.isObject()) {
                    throw mismatch(path, "an object with the fields of " + schema.getName(), node);
                }
                return readRecord(node, schema, model, path + ".");
            case UNION:
                return readUnion(node, schema, model, path);
            default:
                throw new IllegalStateException("unsupported Avro type " + schema.getType());
        }
    }

    private static Object readUnion(JsonNode node, Schema union, SpecificData model, String path) {
        List<String> expected = new ArrayList<>();
        for (Schema branch : union.getTypes()) {
            if (branch.getType() == Schema.Type.NULL) {
                if (node.isNull()) {
                    return null;
                }
                expected.add("null");
            }
        }
        for (Schema branch : union.getTypes()) {
            if (branch.getType() == Schema.Type.NULL) {
                continue;
            }
            if (nonNullBranches(union) == 1) {
                return read(node, branch, model, path);
            }
            try {
                return read(node, branch, model, path);
            } catch (MalformedRecordException e) {
                expected.add(typeName(branch));
            }
        }
        throw mismatch(path, "one of " + String.join(", ", expected), node);
    }

    private static int nonNullBranches(Schema union) {
        int count = 0;
        for (Schema branch : union.getTypes()) {
            count += branch.getType() == Schema.Type.NULL ? 0 : 1;
        }
        return count;
    }

    private static byte[] base64(JsonNode node, String path) {
        if (node.isTextual()) {
            try {
                return Base64.getDecoder().decode(node.textValue());
            } catch (IllegalArgumentException e) {
                throw new MalformedRecordException("field '" + path + "' must be base64, but " + e.getMessage());
            }
        }
        throw mismatch(path, "a base64 string", node);
    }

    private static MalformedRecordException mismatch(String path, String expected, JsonNode got) {
        return new MalformedRecordException("field '" + path + "' must be " + expected + ", got " + describe(got));
    }

    private static String describe(JsonNode node) {
        if (node == null || node.isMissingNode()) {
            return "nothing";
        }
        String text = node.toString();
        return text.length() > 60 ? text.substring(0, 57) + "..." : text;
    }

    private static String typeName(Schema schema) {
        switch (schema.getType()) {
            case RECORD:
            case ENUM:
            case FIXED:
                return schema.getName();
            default:
                return schema.getType().getName();
        }
    }

    private static String fieldNames(Schema schema) {
        List<String> names = new ArrayList<>();
        for (Schema.Field field : schema.getFields()) {
            names.add(field.name());
        }
        return String.join(", ", names);
    }

    // ---- Avro -> JSON

    private static JsonNode write(Object value, Schema schema) {
        switch (schema.getType()) {
            case NULL:
                return NODES.nullNode();
            case BOOLEAN:
                return NODES.booleanNode((Boolean) value);
            case INT:
                return NODES.numberNode((Integer) value);
            case LONG:
                return NODES.numberNode((Long) value);
            case FLOAT:
                return NODES.numberNode((Float) value);
            case DOUBLE:
                return NODES.numberNode((Double) value);
            case STRING:
            case ENUM:
                return NODES.textNode(value.toString());
            case BYTES: {
                ByteBuffer buffer = ((ByteBuffer) value).duplicate();
                byte[] bytes = new byte[buffer.remaining()];
                buffer.get(bytes);
                return NODES.textNode(Base64.getEncoder().encodeToString(bytes));
            }
            case FIXED:
                return NODES.textNode(Base64.getEncoder().encodeToString(((GenericFixed) value).bytes()));
            case ARRAY: {
                ArrayNode array = NODES.arrayNode();
                for (Object item : (Iterable<?>) value) {
                    array.add(write(item, schema.getElementType()));
                }
                return array;
            }
            case MAP: {
                ObjectNode map = NODES.objectNode();
                ((Map<?, ?>) value).forEach((k, v) -> map.set(k.toString(), write(v, schema.getValueType())));
                return map;
            }
            case RECORD: {
                IndexedRecord record = (IndexedRecord) value;
                ObjectNode object = NODES.objectNode();
                for (Schema.Field field : schema.getFields()) {
                    object.set(field.name(), write(record.get(field.pos()), field.schema()));
                }
                return object;
            }
            case UNION:
                return write(value, schema.getTypes().get(SpecificData.get().resolveUnion(schema, value)));
            default:
                throw new IllegalStateException("unsupported Avro type " + schema.getType());
        }
    }
}
