package io.moestream.runtime.constrain;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.networknt.schema.Error;
import com.networknt.schema.InputFormat;
import com.networknt.schema.Schema;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SpecificationVersion;
import java.util.List;

/**
 * Schemas of the supported subset for the property tests, and the independent check of an output:
 * strict JSON parsing (one value, nothing after it) and validation by networknt's JSON Schema
 * validator (draft 2020-12).
 */
final class SchemaCases {

    static final List<String> SCHEMAS = List.of(
            // a realistic extraction schema
            """
            {"type":"object","properties":{
              "sentiment":{"enum":["positive","negative","neutral"]},
              "products":{"type":"array","items":{"type":"string","maxLength":12},"maxItems":4},
              "score":{"type":"number","minimum":0,"maximum":1}},
             "required":["sentiment","products"]}""",
            // nested objects through $defs, optional members, integer range, boolean, null
            """
            {"$defs":{"address":{"type":"object","properties":{
                "city":{"type":"string","minLength":1,"maxLength":10},
                "zip":{"type":"string","pattern":"^[0-9]{5}$"}},"required":["city"]}},
             "type":"object","properties":{
               "name":{"type":"string","maxLength":16},
               "age":{"type":"integer","minimum":0,"maximum":150},
               "home":{"$ref":"#/$defs/address"},
               "work":{"anyOf":[{"$ref":"#/$defs/address"},{"type":"null"}]},
               "active":{"type":"boolean"}},
             "required":["name","home"]}""",
            """
            {"anyOf":[{"type":"integer","minimum":-50,"maximum":50},{"type":"string","maxLength":5},{"type":"null"}]}""",
            """
            {"oneOf":[
              {"type":"object","properties":{"kind":{"const":"a"},"x":{"type":"integer"}},"required":["kind","x"]},
              {"type":"object","properties":{"kind":{"const":"b"},"y":{"type":"boolean"}},"required":["kind"]}]}""",
            """
            {"type":"object","properties":{
              "id":{"type":"string","pattern":"^[A-Z]{2}-\\\\d{3,5}$"},
              "code":{"type":"string","pattern":"^é[a-c]+"}},"required":["id","code"]}""",
            // unicode and escapes in names, values and generated strings
            """
            {"type":"object","properties":{
              "naïve 名前":{"enum":["café","日本語","a\\"b\\\\c\\n","\\t☃",1.5,null]},
              "text":{"type":"string","minLength":1,"maxLength":8}},
             "required":["naïve 名前","text"]}""",
            """
            {"type":"array","items":{"type":"array","items":{"type":"integer","exclusiveMinimum":-3,"exclusiveMaximum":1000},
              "minItems":1,"maxItems":3},"minItems":2,"maxItems":4}""",
            """
            {"type":"object","properties":{
              "a":{"type":"number"},
              "b":{"type":"number","minimum":-2,"maximum":3},
              "c":{"type":"number","exclusiveMinimum":0,"exclusiveMaximum":1},
              "d":{"type":"integer","minimum":100}},
             "required":["a","b","c","d"]}""",
            """
            {"type":["string","null","boolean"],"maxLength":3}""",
            """
            {}""",
            """
            {"type":"object","properties":{"p":{"type":"integer"},"q":{"type":"string","maxLength":3},
              "r":{"type":"boolean"}},"additionalProperties":false}""");

    private static final ObjectMapper STRICT = new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
    private static final SchemaRegistry REGISTRY = SchemaRegistry.withDefaultDialect(SpecificationVersion.DRAFT_2020_12);

    private SchemaCases() {}

    /** Null when {@code text} is one JSON value valid against {@code schema}; otherwise why not. */
    static String problems(String schema, String text) {
        try {
            JsonNode value = STRICT.readTree(text);
            if (value == null) {
                return "no JSON value";
            }
        } catch (Exception e) {
            return "not one JSON value: " + e.getMessage();
        }
        Schema s = REGISTRY.getSchema(schema);
        List<Error> errors = s.validate(text, InputFormat.JSON);
        return errors.isEmpty() ? null : errors.toString();
    }
}
