package io.moestream.operators;

import io.moestream.schemas.InferenceError;
import java.io.Serializable;
import java.util.List;

/** Checks a decoded record before it enters the pipeline. */
public interface RecordValidator<T> extends Serializable {

    /** What is wrong with the record, one sentence each, saying what to fix; empty when it is valid. */
    List<String> problems(T record);

    /** An INVALID_PARAMS error for the record, naming it (request id, tenant, context), without source coordinates. */
    InferenceError.Builder invalid(T record, String message, long nowMillis);
}
