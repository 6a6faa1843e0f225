package io.moestream.runtime.backend;

/**
 * A row-major {@code [rows][cols]} activation buffer owned by one {@link Backend} (host memory for
 * the CPU backend, device memory for CUDA). Tensors are opaque: values move in and out only through
 * {@link Backend#write} and {@link Backend#read}. A view made by {@link #rows(int)} shares storage
 * with its parent and is never closed on its own.
 */
public interface Tensor extends AutoCloseable {

    /** Element type of an activation tensor. */
    enum DType {
        F32,
        I32
    }

    DType dtype();

    int rows();

    int cols();

    /** The first {@code n} rows ({@code n <= rows()}), sharing storage; used to run a step on fewer rows than allocated. */
    Tensor rows(int n);

    /** Releases the storage (no-op on views). */
    @Override
    void close();
}
