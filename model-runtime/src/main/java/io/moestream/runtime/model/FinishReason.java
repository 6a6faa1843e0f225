package io.moestream.runtime.model;

/** Why a generation ended. */
public enum FinishReason {
    /** The model produced its end-of-sequence token. */
    STOP,
    /** {@code maxTokens} reached. */
    LENGTH,
    /** A stop sequence was produced (it is not part of the text). */
    STOP_SEQUENCE
}
