package io.moestream.operators.sql;

import io.moestream.runtime.constrain.Grammar;
import java.io.Serializable;
import java.util.List;

/**
 * A model's structured-output constraint ({@code response-format.*} options), kept as text so the
 * provider serializes it, and compiled through {@link Grammar}'s cache where the engine runs.
 *
 * @param kind {@code json-schema}, {@code regex} or {@code choices}
 * @param text the schema or regex ({@code kind} {@code choices}: unused)
 */
record ResponseFormatOption(String kind, String text, List<String> choices) implements Serializable {

    /**
     * The compiled constraint.
     *
     * @throws io.moestream.runtime.constrain.UnsupportedSchemaException naming the keyword it cannot compile
     */
    Grammar grammar() {
        return switch (kind) {
            case "json-schema" -> Grammar.jsonSchema(text);
            case "regex" -> Grammar.regex(text);
            case "choices" -> Grammar.choice(choices);
            default -> throw new IllegalStateException("unknown response format " + kind);
        };
    }
}
