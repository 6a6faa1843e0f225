package io.moestream.runtime.constrain;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Compiles the supported JSON Schema subset (docs/structured-output.md) to an {@link Rx} of the
 * compact JSON text of a valid instance: no whitespace, object properties in the schema's order,
 * no properties beyond {@code properties}. Any keyword outside the subset is refused with an
 * {@link UnsupportedSchemaException} naming it, never ignored.
 */
final class JsonSchemaCompiler {

    /** Keywords that only describe (never constrain) and are accepted anywhere. */
    private static final Set<String> ANNOTATIONS = Set.of("$schema", "$id", "$comment", "title", "description",
            "default", "examples", "deprecated", "readOnly", "writeOnly", "$defs", "definitions");
    private static final Set<String> SUPPORTED = Set.of("type", "enum", "const", "properties", "required",
            "additionalProperties", "minLength", "maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum",
            "exclusiveMaximum", "items", "minItems", "maxItems", "anyOf", "oneOf", "$ref");
    /** Nesting depth of an unconstrained value ({@code {}} or a schema with no type). */
    static final int ANY_DEPTH = 3;

    private static final ObjectMapper JSON = new ObjectMapper();

    private final JsonNode root;
    private final Set<String> expanding = new HashSet<>();

    private JsonSchemaCompiler(JsonNode root) {
        this.root = root;
    }

    static Rx compile(String schemaText) {
        JsonNode root;
        try {
            root = JSON.readTree(schemaText);
        } catch (JsonProcessingException e) {
            throw new UnsupportedSchemaException("schema", "the JSON schema is not valid JSON: " + e.getOriginalMessage());
        }
        if (root == null || !(root.isObject() || root.isBoolean())) {
            throw new UnsupportedSchemaException("schema", "a JSON schema must be an object (or true)");
        }
        return new JsonSchemaCompiler(root).value(root, "#");
    }

    private Rx value(JsonNode s, String at) {
        if (s.isBoolean()) {
            if (!s.booleanValue()) {
                throw unsupported("false", at, "the schema false accepts nothing");
            }
            return anyValue(ANY_DEPTH);
        }
        if (!s.isObject()) {
            throw unsupported("schema", at, "a schema must be an object or a boolean");
        }
        for (Iterator<String> it = s.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!SUPPORTED.contains(k) && !ANNOTATIONS.contains(k)) {
                throw unsupported(k, at, "keyword '" + k + "' is not supported (supported: " + String.join(", ",
                        new java.util.TreeSet<>(SUPPORTED)) + ")");
            }
        }
        if (s.has("$ref")) {
            onlyWith(s, at, "$ref");
            return ref(s.get("$ref"), at);
        }
        if (s.has("anyOf") || s.has("oneOf")) {
            String k = s.has("anyOf") ? "anyOf" : "oneOf";
            onlyWith(s, at, k);
            JsonNode list = s.get(k);
            if (!list.isArray() || list.isEmpty()) {
                throw unsupported(k, at, k + " must be a non-empty list of schemas");
            }
            List<Rx> options = new ArrayList<>();
            for (int i = 0; i < list.size(); i++) {
                options.add(value(list.get(i), at + "/" + k + "/" + i));
            }
            if (k.equals("oneOf")) {
                disjoint(list, options, at);
            }
            return Rx.alt(options);
        }
        if (s.has("const")) {
            return literal(s.get("const"));
        }
        if (s.has("enum")) {
            JsonNode list = s.get("enum");
            if (!list.isArray() || list.isEmpty()) {
                throw unsupported("enum", at, "enum must be a non-empty list");
            }
            List<Rx> options = new ArrayList<>();
            for (JsonNode v : list) {
                options.add(literal(v));
            }
            return Rx.alt(options);
        }
        Set<String> types = types(s, at);
        List<Rx> options = new ArrayList<>();
        for (String t : types) {
            options.add(switch (t) {
                case "object" -> object(s, at);
                case "array" -> array(s, at);
                case "string" -> string(s, at);
                case "number" -> number(s, at, false);
                case "integer" -> number(s, at, true);
                case "boolean" -> Rx.alt(Rx.literal("true"), Rx.literal("false"));
                case "null" -> Rx.literal("null");
                default -> throw unsupported("type", at, "unknown type '" + t + "'");
            });
        }
        return Rx.alt(options);
    }

    /**
     * {@code oneOf} means exactly one: alternatives that could give the same answer are refused, naming
     * {@code oneOf} and a text that two of them accept. Object alternatives with a tag (a member both
     * require and declare, with disjoint values) are disjoint without walking their whole product.
     */
    private void disjoint(JsonNode schemas, List<Rx> options, String at) {
        for (int i = 0; i < options.size(); i++) {
            for (int j = i + 1; j < options.size(); j++) {
                if (tagged(schemas.get(i), schemas.get(j), at)) {
                    continue;
                }
                String both = Overlap.witness(options.get(i), options.get(j), "oneOf", at);
                if (both != null) {
                    throw unsupported("oneOf", at, "oneOf alternatives " + i + " and " + j + " overlap: both accept "
                            + both + " (oneOf means exactly one: make the alternatives disjoint, or use anyOf)");
                }
            }
        }
    }

    /** Whether two alternatives are objects of which one has a tag the other's answers never carry. */
    private boolean tagged(JsonNode a, JsonNode b, String at) {
        JsonNode x = resolved(a);
        JsonNode y = resolved(b);
        return objectOnly(x, at) && objectOnly(y, at) && (tags(x, y, at) || tags(y, x, at));
    }

    /**
     * Whether every answer of {@code x} has a member that no answer of {@code y} has with that value:
     * a member {@code x} requires that {@code y} does not declare (its answers have no other members),
     * or declares with values disjoint from {@code x}'s.
     */
    private boolean tags(JsonNode x, JsonNode y, String at) {
        for (JsonNode required : x.path("required")) {
            String name = required.asText();
            if (!y.path("properties").has(name)) {
                return true;
            }
            Rx vx = value(x.get("properties").get(name), at + "/properties/" + name);
            Rx vy = value(y.get("properties").get(name), at + "/properties/" + name);
            if (Overlap.witness(vx, vy, "oneOf", at) == null) {
                return true;
            }
        }
        return false;
    }

    /** The schema after following {@code $ref}s (they resolved when the alternatives compiled). */
    private JsonNode resolved(JsonNode s) {
        for (int hops = 0; s.isObject() && s.has("$ref") && hops < 64; hops++) {
            String r = s.get("$ref").asText();
            String defs = r.startsWith("#/$defs/") ? "$defs" : "definitions";
            s = root.get(defs).get(r.substring(defs.length() + 3));
        }
        return s;
    }

    private boolean objectOnly(JsonNode s, String at) {
        return s.isObject() && !s.has("anyOf") && !s.has("oneOf") && !s.has("const") && !s.has("enum")
                && types(s, at).equals(Set.of("object"));
    }

    /** The types a schema allows: its {@code type}, or inferred from its keywords, or all (any value). */
    private Set<String> types(JsonNode s, String at) {
        Set<String> types = new LinkedHashSet<>();
        JsonNode type = s.get("type");
        if (type != null && type.isTextual()) {
            types.add(type.textValue());
        } else if (type != null && type.isArray() && !type.isEmpty()) {
            type.forEach(t -> types.add(t.asText()));
        } else if (type != null) {
            throw unsupported("type", at, "type must be a string or a non-empty list of strings");
        } else if (s.has("properties") || s.has("required") || s.has("additionalProperties")) {
            types.add("object");
        } else if (s.has("items") || s.has("minItems") || s.has("maxItems")) {
            types.add("array");
        } else if (s.has("pattern") || s.has("minLength") || s.has("maxLength")) {
            types.add("string");
        } else if (s.has("minimum") || s.has("maximum") || s.has("exclusiveMinimum") || s.has("exclusiveMaximum")) {
            types.add("number");
        } else {
            types.addAll(List.of("object", "array", "string", "number", "boolean", "null"));
        }
        return types;
    }

    private Rx object(JsonNode s, String at) {
        JsonNode props = s.has("properties") ? s.get("properties") : JSON.createObjectNode();
        if (!props.isObject()) {
            throw unsupported("properties", at, "properties must be an object");
        }
        Set<String> required = new HashSet<>();
        if (s.has("required")) {
            for (JsonNode r : s.get("required")) {
                if (!props.has(r.asText())) {
                    throw unsupported("required", at, "required property '" + r.asText() + "' is not in properties"
                            + " (only listed properties are generated)");
                }
                required.add(r.asText());
            }
        }
        if (s.has("additionalProperties") && !s.get("additionalProperties").isBoolean()
                && !s.get("additionalProperties").isObject()) {
            throw unsupported("additionalProperties", at, "additionalProperties must be a boolean or a schema");
        }
        // before property i: "nothing written yet" (first) or "something written" (later); a member
        // is written once and shared by both paths, the later one adding a comma
        Rx rest = Rx.EMPTY; // members i.. given something written
        Rx restFirst = Rx.EMPTY; // members i.. given nothing written
        List<Map.Entry<String, JsonNode>> members = new ArrayList<>();
        props.fields().forEachRemaining(members::add);
        for (int i = members.size() - 1; i >= 0; i--) {
            Map.Entry<String, JsonNode> m = members.get(i);
            Rx member = Rx.seq(literal(JSON.getNodeFactory().textNode(m.getKey())), Rx.literal(":"),
                    value(m.getValue(), at + "/properties/" + m.getKey()));
            Rx withComma = Rx.seq(Rx.literal(","), member, rest);
            Rx first = Rx.seq(member, rest);
            boolean req = required.contains(m.getKey());
            Rx newRest = req ? withComma : Rx.alt(withComma, rest);
            Rx newFirst = req ? first : Rx.alt(first, restFirst);
            rest = newRest;
            restFirst = newFirst;
        }
        return Rx.seq(Rx.literal("{"), restFirst, Rx.literal("}"));
    }

    private Rx array(JsonNode s, String at) {
        Rx item = s.has("items") ? value(s.get("items"), at + "/items") : anyValue(ANY_DEPTH - 1);
        int min = count(s, "minItems", at, 0);
        int max = count(s, "maxItems", at, -1);
        if (max >= 0 && max < min) {
            throw unsupported("maxItems", at, "maxItems " + max + " is below minItems " + min);
        }
        Rx more = Rx.seq(Rx.literal(","), item);
        Rx items;
        if (max == 0) {
            items = Rx.EMPTY;
        } else {
            Rx nonEmpty = Rx.seq(item, new Rx.Repeat(more, Math.max(0, min - 1), max < 0 ? -1 : max - 1));
            items = min == 0 ? Rx.optional(nonEmpty) : nonEmpty;
        }
        return Rx.seq(Rx.literal("["), items, Rx.literal("]"));
    }

    private Rx string(JsonNode s, String at) {
        int min = count(s, "minLength", at, 0);
        int max = count(s, "maxLength", at, -1);
        if (max >= 0 && max < min) {
            throw unsupported("maxLength", at, "maxLength " + max + " is below minLength " + min);
        }
        Rx body;
        if (s.has("pattern")) {
            if (s.has("minLength") || s.has("maxLength")) {
                throw unsupported("pattern", at, "pattern together with minLength/maxLength is not supported");
            }
            if (!s.get("pattern").isTextual()) {
                throw unsupported("pattern", at, "pattern must be a string");
            }
            body = RegexParser.jsonStringPattern(s.get("pattern").textValue());
        } else {
            body = new Rx.Repeat(CodePoints.of(0, CodePoints.MAX).jsonStringChar(), min, max);
        }
        return Rx.seq(Rx.literal("\""), body, Rx.literal("\""));
    }

    private Rx number(JsonNode s, String at, boolean integer) {
        Long lo = bound(s, "minimum", at);
        Long hi = bound(s, "maximum", at);
        Long xlo = bound(s, "exclusiveMinimum", at);
        Long xhi = bound(s, "exclusiveMaximum", at);
        boolean loOpen = false;
        boolean hiOpen = false;
        if (xlo != null && (lo == null || xlo >= lo)) {
            lo = xlo;
            loOpen = true;
        }
        if (xhi != null && (hi == null || xhi <= hi)) {
            hi = xhi;
            hiOpen = true;
        }
        Rx rx = integer
                ? NumberLanguage.integers(lo == null ? null : loOpen ? lo + 1 : lo, hi == null ? null : hiOpen ? hi - 1 : hi)
                : NumberLanguage.numbers(lo, loOpen, hi, hiOpen);
        if (rx == null) {
            throw unsupported("minimum", at, "the range of " + (integer ? "integer" : "number") + " is empty");
        }
        return rx;
    }

    private Long bound(JsonNode s, String k, String at) {
        if (!s.has(k)) {
            return null;
        }
        JsonNode v = s.get(k);
        if (!v.isNumber()) {
            throw unsupported(k, at, k + " must be a number");
        }
        if (v.decimalValue().stripTrailingZeros().scale() > 0) {
            throw unsupported(k, at, k + " " + v + ": only whole-number bounds are supported");
        }
        if (Math.abs(v.doubleValue()) > NumberLanguage.LIMIT) {
            throw unsupported(k, at, k + " " + v + ": bounds beyond " + NumberLanguage.LIMIT + " in magnitude are not supported");
        }
        return v.longValue();
    }

    private int count(JsonNode s, String k, String at, int absent) {
        if (!s.has(k)) {
            return absent;
        }
        JsonNode v = s.get(k);
        if (!v.canConvertToInt() || !v.isIntegralNumber() || v.intValue() < 0) {
            throw unsupported(k, at, k + " must be a non-negative integer");
        }
        if (v.intValue() > RegexParser.MAX_COUNT) {
            throw unsupported(k, at, k + " " + v.intValue() + ": counts above " + RegexParser.MAX_COUNT + " are not supported");
        }
        return v.intValue();
    }

    private Rx ref(JsonNode ref, String at) {
        String r = ref.asText();
        String[] prefixes = {"#/$defs/", "#/definitions/"};
        for (String prefix : prefixes) {
            if (r.startsWith(prefix)) {
                String name = r.substring(prefix.length());
                JsonNode defs = root.get(prefix.substring(2, prefix.length() - 1));
                if (defs == null || !defs.has(name)) {
                    throw unsupported("$ref", at, "$ref " + r + " names no definition");
                }
                if (!expanding.add(r)) {
                    throw unsupported("$ref", at, "recursive $ref " + r + " is not supported (the automaton is finite)");
                }
                Rx rx = value(defs.get(name), r);
                expanding.remove(r);
                return rx;
            }
        }
        throw unsupported("$ref", at, "$ref " + r + ": only local references to #/$defs/... or #/definitions/... are supported");
    }

    private static void onlyWith(JsonNode s, String at, String keyword) {
        for (Iterator<String> it = s.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!k.equals(keyword) && !ANNOTATIONS.contains(k)) {
                throw unsupported(k, at, "'" + k + "' next to " + keyword + " is not supported (move it into the "
                        + keyword + (keyword.equals("$ref") ? " target" : " alternatives") + ")");
            }
        }
    }

    /** Any JSON value, nested at most {@code depth} levels (objects with any keys, arrays). */
    static Rx anyValue(int depth) {
        Rx str = Rx.seq(Rx.literal("\""), Rx.star(CodePoints.of(0, CodePoints.MAX).jsonStringChar()), Rx.literal("\""));
        List<Rx> options = new ArrayList<>(List.of(str, NumberLanguage.anyNumber(), Rx.literal("true"),
                Rx.literal("false"), Rx.literal("null")));
        if (depth > 0) {
            Rx inner = anyValue(depth - 1);
            Rx member = Rx.seq(str, Rx.literal(":"), inner);
            options.add(Rx.seq(Rx.literal("["), Rx.optional(Rx.seq(inner, Rx.star(Rx.seq(Rx.literal(","), inner)))),
                    Rx.literal("]")));
            options.add(Rx.seq(Rx.literal("{"), Rx.optional(Rx.seq(member, Rx.star(Rx.seq(Rx.literal(","), member)))),
                    Rx.literal("}")));
        }
        return Rx.alt(options);
    }

    /** {@code v} written as compact JSON. */
    private static Rx literal(JsonNode v) {
        try {
            return Rx.literal(JSON.writeValueAsString(v));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private static UnsupportedSchemaException unsupported(String keyword, String at, String message) {
        return new UnsupportedSchemaException(keyword, "JSON schema at " + at + ": " + message);
    }
}
