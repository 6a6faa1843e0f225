package io.moestream.operators;

import io.moestream.schemas.ContextReady;
import io.moestream.schemas.Generation;
import io.moestream.schemas.InferenceError;

/** Where the operator's parts emit: the main output and the two side outputs (metrics counted there). */
interface Outputs {

    void generation(Generation generation);

    void contextReady(ContextReady ready);

    void error(InferenceError.Builder error);
}
