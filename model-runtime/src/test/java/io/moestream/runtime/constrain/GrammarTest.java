package io.moestream.runtime.constrain;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.function.LongPredicate;
import org.junit.jupiter.api.Test;

/** The compiled languages, checked string by string against what JSON Schema and regex say. */
class GrammarTest {

    private static boolean matches(Grammar g, String s) {
        return g.matches(s.getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void integerRangesAcceptExactlyTheirMembers() {
        record Case(String schema, LongPredicate member) {}
        List<Case> cases = List.of(
                new Case("{\"type\":\"integer\",\"minimum\":-50,\"maximum\":50}", v -> v >= -50 && v <= 50),
                new Case("{\"type\":\"integer\",\"minimum\":7}", v -> v >= 7),
                new Case("{\"type\":\"integer\",\"maximum\":-13}", v -> v <= -13),
                new Case("{\"type\":\"integer\",\"exclusiveMinimum\":-3,\"exclusiveMaximum\":1000}", v -> v > -3 && v < 1000),
                new Case("{\"type\":\"integer\",\"minimum\":99,\"maximum\":1001}", v -> v >= 99 && v <= 1001),
                new Case("{\"type\":\"integer\"}", v -> true));
        for (Case c : cases) {
            Grammar g = Grammar.jsonSchema(c.schema());
            for (long v = -1200; v <= 1200; v++) {
                assertThat(matches(g, Long.toString(v))).as(c.schema() + " on " + v).isEqualTo(c.member().test(v));
            }
            assertThat(matches(g, "-0")).isFalse();
            assertThat(matches(g, "007")).isFalse();
            assertThat(matches(g, "1.0")).isFalse();
        }
    }

    @Test
    void numberRangesHoldForFractions() {
        Grammar closed = Grammar.jsonSchema("{\"type\":\"number\",\"minimum\":-2,\"maximum\":3}");
        Grammar open = Grammar.jsonSchema("{\"type\":\"number\",\"exclusiveMinimum\":0,\"exclusiveMaximum\":1}");
        for (int tenths = -40; tenths <= 40; tenths++) {
            double v = tenths / 10.0;
            String s = tenths % 10 == 0 ? Integer.toString(tenths / 10) : String.valueOf(v);
            assertThat(matches(closed, s)).as(s).isEqualTo(v >= -2 && v <= 3);
            assertThat(matches(open, s)).as(s).isEqualTo(v > 0 && v < 1);
        }
        assertThat(matches(closed, "-0.25")).isTrue();
        assertThat(matches(closed, "3.5")).isFalse();
        Grammar any = Grammar.jsonSchema("{\"type\":\"number\"}");
        for (String s : List.of("0", "-0.5", "12.25e-3", "1E+9", "7")) {
            assertThat(matches(any, s)).as(s).isTrue();
        }
        for (String s : List.of("01", "1.", ".5", "+1", "1e", "--1")) {
            assertThat(matches(any, s)).as(s).isFalse();
        }
    }

    @Test
    void objectsAreCompactWithMembersInSchemaOrder() {
        Grammar g = Grammar.jsonSchema("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},"
                + "\"b\":{\"type\":\"boolean\"},\"c\":{\"type\":\"null\"}},\"required\":[\"b\"]}");
        for (String ok : List.of("{\"b\":true}", "{\"a\":1,\"b\":false}", "{\"b\":true,\"c\":null}", "{\"a\":-3,\"b\":true,\"c\":null}")) {
            assertThat(matches(g, ok)).as(ok).isTrue();
        }
        for (String bad : List.of("{}", "{\"a\":1}", "{\"b\":true,\"a\":1}", "{ \"b\":true}", "{\"b\":true,}",
                "{\"b\":true,\"d\":1}", "{,\"b\":true}")) {
            assertThat(matches(g, bad)).as(bad).isFalse();
        }
        assertThat(g.prefix("{\"a\":12".getBytes(StandardCharsets.UTF_8))).isTrue();
    }

    @Test
    void stringsCountCharactersAndEscape() {
        Grammar g = Grammar.jsonSchema("{\"type\":\"string\",\"minLength\":2,\"maxLength\":3}");
        assertThat(matches(g, "\"ab\"")).isTrue();
        assertThat(matches(g, "\"日本語\"")).isTrue();
        assertThat(matches(g, "\"\\\"\\n\"")).isTrue(); // two characters, both escaped
        assertThat(matches(g, "\"😀😀\"")).isTrue();
        assertThat(matches(g, "\"a\"")).isFalse();
        assertThat(matches(g, "\"abcd\"")).isFalse();
        assertThat(matches(g, "\"a\nb\"")).isFalse(); // a raw control character
        assertThat(g.prefix(new byte[] {'"', (byte) 0xE6})).isTrue();
        assertThat(g.prefix(new byte[] {'"', (byte) 0xFF})).isFalse(); // never valid UTF-8
        assertThat(g.prefix(new byte[] {'"', (byte) 0xED, (byte) 0xA0})).isFalse(); // a surrogate
    }

    @Test
    void patternsAreSearchesUnlessAnchored() {
        Grammar anchored = Grammar.jsonSchema("{\"type\":\"string\",\"pattern\":\"^[A-Z]{2}-\\\\d{3,5}$\"}");
        assertThat(matches(anchored, "\"AB-123\"")).isTrue();
        assertThat(matches(anchored, "\"AB-123456\"")).isFalse();
        assertThat(matches(anchored, "\"xAB-123\"")).isFalse();
        Grammar search = Grammar.jsonSchema("{\"type\":\"string\",\"pattern\":\"é[a-c]+\"}");
        assertThat(matches(search, "\"xxébc yy\"")).isTrue();
        assertThat(matches(search, "\"xxe bc\"")).isFalse();
        Grammar quote = Grammar.jsonSchema("{\"type\":\"string\",\"pattern\":\"^a\\\"[^a]$\"}");
        assertThat(matches(quote, "\"a\\\"\\n\"")).isTrue();
    }

    @Test
    void regexAndChoiceMatchTheWholeOutput() {
        Grammar r = Grammar.regex("(yes|no)(, because [a-z ]{1,20})?\\.");
        assertThat(matches(r, "yes.")).isTrue();
        assertThat(matches(r, "no, because it is late.")).isTrue();
        assertThat(matches(r, "maybe.")).isFalse();
        Grammar c = Grammar.choice(List.of("red", "green", "grün"));
        assertThat(matches(c, "grün")).isTrue();
        assertThat(matches(c, "gre")).isFalse();
        assertThat(c.prefix("gr".getBytes(StandardCharsets.UTF_8))).isTrue();
    }

    @Test
    void compiledGrammarsAreCachedByHash() {
        String schema = "{\"type\":\"object\",\"properties\":{\"cached\":{\"type\":\"boolean\"}}}";
        Grammar a = Grammar.jsonSchema(schema);
        assertThat(Grammar.jsonSchema(schema)).isSameAs(a);
        assertThat(Grammar.choice(List.of(schema)).hash()).isNotEqualTo(a.hash());
    }

    @Test
    void unsupportedKeywordsAreNamed() {
        record Case(String schema, String keyword) {}
        List<Case> cases = List.of(
                new Case("{\"type\":\"string\",\"format\":\"date-time\"}", "format"),
                new Case("{\"allOf\":[{\"type\":\"string\"}]}", "allOf"),
                new Case("{\"type\":\"array\",\"prefixItems\":[{\"type\":\"string\"}]}", "prefixItems"),
                new Case("{\"type\":\"object\",\"patternProperties\":{\"a\":{}}}", "patternProperties"),
                new Case("{\"$defs\":{\"n\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/n\"}}},\"$ref\":\"#/$defs/n\"}", "$ref"),
                new Case("{\"$ref\":\"https://example.com/s.json\"}", "$ref"),
                new Case("{\"type\":\"number\",\"minimum\":0.5}", "minimum"),
                new Case("{\"type\":\"string\",\"pattern\":\"(a)\\\\1\"}", "pattern"),
                new Case("{\"type\":\"string\",\"pattern\":\"(?=a)b\"}", "pattern"),
                new Case("{\"type\":\"object\",\"required\":[\"x\"]}", "required"),
                new Case("{\"type\":\"uuid\"}", "type"),
                new Case("{\"type\":", "schema"));
        for (Case c : cases) {
            assertThatThrownBy(() -> Grammar.jsonSchema(c.schema()))
                    .as(c.schema())
                    .isInstanceOfSatisfying(UnsupportedSchemaException.class, e -> {
                        assertThat(e.keyword()).isEqualTo(c.keyword());
                        assertThat(e.getMessage()).contains(c.keyword());
                    });
        }
        assertThatThrownBy(() -> Grammar.regex("a\\bb")).isInstanceOf(UnsupportedSchemaException.class);
        assertThatThrownBy(() -> Grammar.choice(List.of())).isInstanceOf(UnsupportedSchemaException.class);
    }

    @Test
    void oneOfAcceptsDisjointAlternativesAndRefusesOverlappingOnesWithATextBothAccept() {
        Grammar tagged = Grammar.jsonSchema("""
                {"oneOf":[{"type":"object","properties":{"kind":{"const":"a"},"n":{"type":"integer"}},"required":["kind"]},
                          {"type":"object","properties":{"kind":{"const":"b"},"n":{"type":"integer"}},"required":["kind"]},
                          {"type":"integer","minimum":10},{"type":"integer","maximum":9},{"type":"string"}]}""");
        assertThat(matches(tagged, "{\"kind\":\"a\",\"n\":1}")).isTrue();
        assertThat(matches(tagged, "{\"kind\":\"b\"}")).isTrue();
        assertThat(matches(tagged, "9")).isTrue();
        assertThat(matches(tagged, "10")).isTrue();
        assertThat(matches(tagged, "\"x\"")).isTrue();
        assertThat(matches(tagged, "{\"kind\":\"c\"}")).isFalse();

        record Case(String schema, String both) {}
        for (Case c : List.of(
                new Case("{\"oneOf\":[{\"type\":\"integer\"},{\"type\":\"number\"}]}", "0"),
                new Case("{\"oneOf\":[{\"type\":\"integer\",\"maximum\":10},{\"type\":\"integer\",\"minimum\":10}]}", "10"),
                new Case("{\"type\":\"object\",\"properties\":{\"v\":{\"oneOf\":[{\"type\":\"null\"},{\"enum\":[1,null]}]}}}",
                        "null"),
                new Case("{\"oneOf\":[{\"type\":\"string\",\"maxLength\":3},{\"type\":\"string\",\"pattern\":\"^ab\"}]}",
                        "\"ab\""),
                new Case("{\"oneOf\":[{\"type\":\"boolean\"},{\"type\":\"object\",\"properties\":{\"x\":{}}},{}]}", "true"))) {
            assertThatThrownBy(() -> Grammar.jsonSchema(c.schema())).as(c.schema())
                    .isInstanceOfSatisfying(UnsupportedSchemaException.class, e -> {
                        assertThat(e.keyword()).isEqualTo("oneOf");
                        assertThat(e.getMessage()).contains("overlap: both accept " + c.both() + " (oneOf means exactly one");
                    });
        }
        // object tags: a required member the other alternative lacks, or declares with other values,
        // even when the tag comes after large shared members
        String item = "{\"type\":\"array\",\"maxItems\":10,\"items\":{\"type\":\"object\",\"properties\":{"
                + "\"name\":{\"type\":\"string\",\"maxLength\":60},\"qty\":{\"type\":\"integer\",\"minimum\":1,"
                + "\"maximum\":1000}},\"required\":[\"name\"]}}";
        String big = "{\"type\":\"object\",\"properties\":{\"summary\":{\"type\":\"string\",\"maxLength\":200},"
                + "\"items\":" + item + ",\"kind\":{\"const\":\"%s\"}},\"required\":[\"summary\"%s]}";
        Grammar lastTag = Grammar.jsonSchema("{\"oneOf\":[" + big.formatted("a", ",\"kind\"") + "," + big.formatted("b", "") + "]}");
        assertThat(matches(lastTag, "{\"summary\":\"\",\"kind\":\"a\"}")).isTrue();
        assertThat(matches(lastTag, "{\"summary\":\"\"}")).isTrue();
        assertThat(matches(lastTag, "{\"summary\":\"\",\"kind\":\"b\"}")).isTrue();
        Grammar undeclared = Grammar.jsonSchema("""
                {"oneOf":[{"type":"object","properties":{"s":{"type":"string"},"n":{"type":"integer"}},"required":["s","n"]},
                          {"type":"object","properties":{"s":{"type":"string"}}}]}""");
        assertThat(matches(undeclared, "{\"s\":\"x\",\"n\":1}")).isTrue();
        assertThat(matches(undeclared, "{}")).isTrue();
        // no tag, a long shared structure: refused rather than walked for long
        String nonEmpty = item.replace("\"maxItems\":10", "\"minItems\":1,\"maxItems\":10");
        String arrays = "{\"oneOf\":[" + nonEmpty + "," + nonEmpty.replace("\"qty\":{", "\"z\":{\"type\":\"boolean\"},\"qty\":{")
                .replace("\"required\":[\"name\"]", "\"required\":[\"name\",\"z\"]") + "]}";
        assertThatThrownBy(() -> Grammar.jsonSchema(arrays)).isInstanceOfSatisfying(UnsupportedSchemaException.class, e -> {
            assertThat(e.keyword()).isEqualTo("oneOf");
            assertThat(e.getMessage()).contains("share too much structure to check that they are disjoint");
        });

        // anyOf is a union: overlapping alternatives are fine there
        assertThat(matches(Grammar.jsonSchema("{\"anyOf\":[{\"type\":\"integer\"},{\"type\":\"number\"}]}"), "0")).isTrue();
    }

    @Test
    void everySchemaCaseCompiles() {
        for (String schema : SchemaCases.SCHEMAS) {
            Grammar g = Grammar.jsonSchema(schema);
            assertThat(g.nfaStates()).as(schema).isPositive();
        }
    }
}
