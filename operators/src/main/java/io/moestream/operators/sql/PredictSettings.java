package io.moestream.operators.sql;

import java.io.Serializable;
import java.util.List;

/**
 * What the predict function needs besides the engine: sampling per row and the output layout.
 *
 * @param errorColumn a bad row is answered in the {@code error} column instead of failing the job
 * @param outputs     the model's output column names, in order
 * @param format      the structured-output constraint of every answer, or null
 */
record PredictSettings(int maxTokens, float temperature, int topK, float topP, long seed, List<String> stop,
        boolean errorColumn, List<String> outputs,
        ResponseFormatOption format) implements Serializable {

    PredictSettings withFormat(ResponseFormatOption value) {
        return new PredictSettings(maxTokens, temperature, topK, topP, seed, stop, errorColumn, outputs, value);
    }
}
