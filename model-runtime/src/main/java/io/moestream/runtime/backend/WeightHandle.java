package io.moestream.runtime.backend;

import io.moestream.runtime.gguf.GgmlType;

/**
 * A weight tensor resident on a backend: a matrix {@code [rows][cols]} (row r = output r), or a stack
 * of {@link #experts()} such matrices for a 3-D expert tensor, or a vector (rows 1) for norms and
 * biases. Uploaded once per backend device and key; read-only afterwards.
 */
public interface WeightHandle {

    /** The GGUF tensor name it came from. */
    String name();

    GgmlType type();

    int rows();

    int cols();

    /** Matrices in the stack: 1 for a plain matrix or vector. */
    int experts();
}
