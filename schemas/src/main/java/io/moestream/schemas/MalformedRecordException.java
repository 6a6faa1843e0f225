package io.moestream.schemas;

/**
 * A record that cannot be read: bytes that are not Avro single-object encoding, written with an
 * unknown schema, truncated or garbled, or JSON that does not fit the record's schema.
 *
 * <p>The message is meant for whoever produced the record: it says what was found and what was
 * expected, so that it can be put as is into an {@code InferenceError} with code
 * {@code MALFORMED_RECORD}.
 */
public class MalformedRecordException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    public MalformedRecordException(String message) {
        super(message);
    }

    public MalformedRecordException(String message, Throwable cause) {
        super(message, cause);
    }
}
