package io.moestream.operators;

import io.moestream.runtime.model.Model;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;

/**
 * Models loaded in this JVM, one per file: the weights are memory-mapped once and shared by every
 * operator instance (slot) of the TaskManager. {@link Model} is thread-safe; engines are not and
 * are created per operator instance.
 */
final class SharedModels {

    private static final ConcurrentMap<Path, Model> MODELS = new ConcurrentHashMap<>();

    private SharedModels() {}

    static Model get(Path file) throws IOException {
        Path key = file.toAbsolutePath().normalize();
        try {
            return MODELS.computeIfAbsent(key, path -> {
                try {
                    return Model.load(path);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
        } catch (UncheckedIOException e) {
            throw new IOException("cannot load model " + key + ": " + e.getCause().getMessage(), e.getCause());
        }
    }
}
