package io.moestream.runtime.backend;

/**
 * Creates backends of one kind; found with {@link java.util.ServiceLoader} (list implementations in
 * {@code META-INF/services/io.moestream.runtime.backend.BackendProvider}).
 */
public interface BackendProvider {

    /** The name {@code backend=...} selects, e.g. {@code cpu} or {@code cuda}. */
    String name();

    /** Higher wins under {@code backend=auto} among available providers (CPU is 0). */
    int priority();

    /** Why this provider cannot open {@code deviceIndex} here, or {@code null} when it can. Never throws. */
    String unavailableReason(int deviceIndex);

    /** Opens a backend on {@code deviceIndex}; throws {@link BackendUnavailableException} saying why when it cannot. */
    Backend open(int deviceIndex);
}
