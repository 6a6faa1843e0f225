package io.moestream.jobs.kafka;

import io.moestream.schemas.RecordType;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/** Default topic names, and the record type each topic carries. */
public final class Topics {

    public static final String DOCUMENTS = "moe.documents";
    public static final String PROMPTS = "moe.prompts";
    public static final String GENERATIONS = "moe.generations";
    public static final String ERRORS = "moe.errors";
    public static final String CONTEXTS = "moe.contexts";

    /** Every default topic. */
    public static final List<String> ALL = List.of(DOCUMENTS, PROMPTS, GENERATIONS, ERRORS, CONTEXTS);

    private Topics() {}

    /**
     * The record type a topic carries, from its name: the default names, or any name whose last
     * part (after {@code .}, {@code -} or {@code _}) is {@code documents}, {@code prompts},
     * {@code generations}, {@code errors} or {@code contexts} (so {@code staging.moe.prompts} and
     * {@code acme-prompts} work too).
     */
    public static Optional<RecordType> recordType(String topic) {
        String name = topic.toLowerCase(Locale.ROOT);
        String last = name.substring(Math.max(name.lastIndexOf('.'), Math.max(name.lastIndexOf('-'), name.lastIndexOf('_'))) + 1);
        switch (last) {
            case "documents":
                return Optional.of(RecordType.DOCUMENT);
            case "prompts":
                return Optional.of(RecordType.PROMPT);
            case "generations":
                return Optional.of(RecordType.GENERATION);
            case "errors":
                return Optional.of(RecordType.ERROR);
            case "contexts":
                return Optional.of(RecordType.CONTEXT_READY);
            default:
                return Optional.empty();
        }
    }

    /**
     * The given type, else the one the topic name implies.
     *
     * @throws IllegalArgumentException if neither says
     */
    public static RecordType recordType(String topic, RecordType given) {
        if (given != null) {
            return given;
        }
        return recordType(topic).orElseThrow(() -> new IllegalArgumentException(
                "cannot tell the record type from topic '" + topic + "'; pass --type " + RecordType.cliNames()));
    }
}
