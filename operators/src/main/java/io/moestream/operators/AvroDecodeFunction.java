package io.moestream.operators;

import io.moestream.schemas.AvroCodec;
import io.moestream.schemas.Document;
import io.moestream.schemas.ErrorCode;
import io.moestream.schemas.InferenceError;
import io.moestream.schemas.MalformedRecordException;
import io.moestream.schemas.Prompt;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Objects;
import org.apache.avro.specific.SpecificRecordBase;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.java.typeutils.ResultTypeQueryable;
import org.apache.flink.formats.avro.typeutils.AvroTypeInfo;
import org.apache.flink.streaming.api.functions.ProcessFunction;
import org.apache.flink.util.Collector;

/**
 * Decodes Avro single-object encoded records and validates them. A record that cannot be decoded
 * becomes one {@link InferenceError} with code MALFORMED_RECORD (with its raw bytes and source
 * coordinates), a decoded record that breaks a rule one with code INVALID_PARAMS listing every
 * problem; both go to {@link OutputTags#ERRORS}. Valid records go on.
 *
 * <pre>{@code
 * SingleOutputStreamOperator<Prompt> prompts = raw.process(AvroDecodeFunction.prompts(512));
 * DataStream<InferenceError> errors = prompts.getSideOutput(OutputTags.ERRORS);
 * }</pre>
 */
public class AvroDecodeFunction<T extends SpecificRecordBase> extends ProcessFunction<RawRecord, T>
        implements ResultTypeQueryable<T> {

    private static final long serialVersionUID = 1L;

    // configuration
    private final AvroCodec<T> codec;
    private final RecordValidator<T> validator;

    public AvroDecodeFunction(AvroCodec<T> codec, RecordValidator<T> validator) {
        this.codec = Objects.requireNonNull(codec, "codec");
        this.validator = Objects.requireNonNull(validator, "validator");
    }

    /** Prompts, with {@code max_tokens} capped at {@code maxTokensCap}. */
    public static AvroDecodeFunction<Prompt> prompts(int maxTokensCap) {
        return prompts(AvroCodec.forPrompt(), maxTokensCap);
    }

    /** Prompts read with {@code codec} (which may know older writer schemas), {@code max_tokens} capped at {@code maxTokensCap}. */
    public static AvroDecodeFunction<Prompt> prompts(AvroCodec<Prompt> codec, int maxTokensCap) {
        return new AvroDecodeFunction<>(codec, new PromptValidator(maxTokensCap));
    }

    /** Document parts. */
    public static AvroDecodeFunction<Document> documents() {
        return documents(AvroCodec.forDocument());
    }

    /** Document parts read with {@code codec} (which may know older writer schemas). */
    public static AvroDecodeFunction<Document> documents(AvroCodec<Document> codec) {
        return new AvroDecodeFunction<>(codec, new DocumentValidator());
    }

    @Override
    public void processElement(RawRecord raw, Context ctx, Collector<T> out) {
        long now = ctx.timerService().currentProcessingTime();
        T record;
        try {
            record = codec.decode(raw.value);
        } catch (MalformedRecordException e) {
            InferenceError.Builder error = InferenceError.newBuilder()
                    .setCode(ErrorCode.MALFORMED_RECORD)
                    .setMessage(e.getMessage())
                    .setRaw(raw.value == null ? null : ByteBuffer.wrap(raw.value))
                    .setTimestampMs(now);
            error(ctx, withSource(error, raw));
            return;
        }
        List<String> problems = validator.problems(record);
        if (!problems.isEmpty()) {
            String message = "invalid " + codec.schema().getName() + ": " + String.join("; ", problems);
            error(ctx, withSource(validator.invalid(record, message, now), raw));
            return;
        }
        out.collect(record);
    }

    private void error(Context ctx, InferenceError.Builder error) {
        ctx.output(OutputTags.ERRORS, error.build());
        ProgressStats.ERRORS.increment();
    }

    private static InferenceError.Builder withSource(InferenceError.Builder error, RawRecord raw) {
        if (raw.hasCoordinates()) {
            error.setSourceTopic(raw.topic).setSourcePartition(raw.partition).setSourceOffset(raw.offset);
        }
        return error;
    }

    @Override
    public TypeInformation<T> getProducedType() {
        return new AvroTypeInfo<>(codec.type());
    }
}
