package io.moestream.operators;

import io.moestream.schemas.ContextReady;
import io.moestream.schemas.InferenceError;
import org.apache.flink.formats.avro.typeutils.AvroTypeInfo;
import org.apache.flink.util.OutputTag;

/** The side outputs of the decode functions and the inference operator. */
public final class OutputTags {

    /** Inputs that could not be answered: malformed or invalid records, unknown contexts, model errors. */
    public static final OutputTag<InferenceError> ERRORS =
            new OutputTag<>("errors", new AvroTypeInfo<>(InferenceError.class));

    /** One record per document whose last part has been prefilled. */
    public static final OutputTag<ContextReady> CONTEXTS =
            new OutputTag<>("contexts", new AvroTypeInfo<>(ContextReady.class));

    private OutputTags() {}
}
