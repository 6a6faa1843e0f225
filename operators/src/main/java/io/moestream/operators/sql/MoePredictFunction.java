package io.moestream.operators.sql;

import io.moestream.operators.InferenceConfig;
import io.moestream.operators.SharedEngine;
import io.moestream.runtime.constrain.Grammar;
import io.moestream.runtime.sampler.SamplingParams;
import java.nio.charset.StandardCharsets;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.functions.AsyncPredictFunction;
import org.apache.flink.table.functions.FunctionContext;

/**
 * {@code ML_PREDICT} with the {@code moestream} provider: each row's prompt joins the steps of the
 * TaskManager's {@link SharedEngine}, so rows in flight (up to {@code max-concurrent-operations} per
 * subtask, from every subtask) are batched into the same engine steps. Sampling is seeded from the
 * model's {@code seed} and the prompt text, so a retried row gets the same answer.
 */
public final class MoePredictFunction extends AsyncPredictFunction {

    private static final long serialVersionUID = 1L;
    private static final long FNV_OFFSET = 0xcbf29ce484222325L;
    private static final long FNV_PRIME = 0x100000001b3L;

    private final InferenceConfig engineConfig;
    private final PredictSettings settings;
    private transient SharedEngine engine;
    private transient Grammar grammar;

    MoePredictFunction(InferenceConfig engineConfig, PredictSettings settings) {
        this.engineConfig = engineConfig;
        this.settings = settings;
    }

    @Override
    public void open(FunctionContext context) throws Exception {
        grammar = settings.format() == null ? null : settings.format().grammar();
        engine = SharedEngine.acquire(engineConfig);
    }

    @Override
    public void close() {
        if (engine != null) {
            engine.release();
            engine = null;
        }
    }

    @Override
    public CompletableFuture<Collection<RowData>> asyncPredict(RowData input) {
        String prompt = input.isNullAt(0) ? null : input.getString(0).toString();
        SamplingParams params = new SamplingParams(settings.maxTokens(), settings.temperature(), settings.topK(),
                settings.topP(), seed(prompt), settings.stop());
        return engine.submit(prompt, params, grammar).handle((answer, failure) -> {
            if (failure == null) {
                return List.of(row(answer, null));
            }
            Throwable cause = failure instanceof CompletionException && failure.getCause() != null ? failure.getCause() : failure;
            if (settings.errorColumn()) {
                return List.of(row(null, cause.getMessage() == null ? cause.toString() : cause.getMessage()));
            }
            throw new CompletionException(new IllegalArgumentException("ML_PREDICT with the moestream provider: "
                    + cause.getMessage() + " (set 'error-handling' = 'column' to answer such rows in the error column)", cause));
        });
    }

    private RowData row(SharedEngine.Answer answer, String error) {
        List<String> outputs = settings.outputs();
        GenericRowData row = new GenericRowData(outputs.size());
        for (int i = 0; i < outputs.size(); i++) {
            row.setField(i, switch (outputs.get(i)) {
                case "text" -> answer == null ? null : StringData.fromString(answer.text());
                case "finish_reason" -> answer == null ? null : StringData.fromString(answer.finishReason());
                case "prompt_tokens" -> answer == null ? null : answer.promptTokens();
                case "completion_tokens" -> answer == null ? null : answer.completionTokens();
                case "error" -> error == null ? null : StringData.fromString(error);
                default -> throw new IllegalStateException("unknown output column " + outputs.get(i));
            });
        }
        return row;
    }

    /** The model's seed mixed with a 64-bit FNV-1a hash of the prompt's UTF-8 bytes. */
    private long seed(String prompt) {
        long hash = FNV_OFFSET;
        if (prompt != null) {
            for (byte b : prompt.getBytes(StandardCharsets.UTF_8)) {
                hash ^= b & 0xFF;
                hash *= FNV_PRIME;
            }
        }
        return hash ^ settings.seed();
    }
}
