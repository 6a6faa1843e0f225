package io.moestream.runtime.model;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * The demo's default model, bundled as a class-path resource: {@code trained-moe-q4_k_m.gguf}, a
 * 14 M-parameter MoE (8 experts, top-2) trained on the Python docs, quantized to Q4_K_M (8.9 MB). Memory mapping needs a real
 * file, so the resource is copied to a temporary file once per JVM (deleted on exit).
 */
public final class DefaultModel {

    /** Class-path location of the bundled model. */
    public static final String RESOURCE = "/io/moestream/runtime/models/trained-moe-q4_k_m.gguf";

    private static Path extracted;

    private DefaultModel() {}

    /** The bundled model as a file, extracting it on first use. */
    public static synchronized Path path() {
        if (extracted == null) {
            try (InputStream in = DefaultModel.class.getResourceAsStream(RESOURCE)) {
                if (in == null) {
                    throw new IllegalStateException("bundled model " + RESOURCE + " is missing from the class path");
                }
                Path tmp = Files.createTempFile("moestream-trained-moe-q4_k_m-", ".gguf");
                tmp.toFile().deleteOnExit();
                Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
                extracted = tmp;
            } catch (IOException e) {
                throw new UncheckedIOException("could not extract the bundled model " + RESOURCE, e);
            }
        }
        return extracted;
    }
}
