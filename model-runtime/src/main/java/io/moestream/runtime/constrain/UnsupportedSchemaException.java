package io.moestream.runtime.constrain;

/**
 * A constraint that cannot be compiled: a JSON Schema keyword outside the supported subset, a
 * malformed schema, regex or choice list, or one too large to expand. {@link #keyword()} names the
 * offending keyword (or {@code pattern}, {@code regex}, {@code choice}, {@code size}); the operator
 * reports the message as an {@code INVALID_REQUEST}.
 */
public final class UnsupportedSchemaException extends IllegalArgumentException {

    private final String keyword;

    public UnsupportedSchemaException(String keyword, String message) {
        super(message);
        this.keyword = keyword;
    }

    public String keyword() {
        return keyword;
    }
}
