package io.moestream.runtime;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The full llama.cpp oracle in {@code ../shared/oracle} beside the repository root (models and
 * goldens too large to copy into test resources). Tests that need it call {@link #model} /
 * {@link #golden}, which skip the test (JUnit assumption) when the directory is absent.
 */
public final class SharedOracle {

    private SharedOracle() {}

    /** {@code ../shared/oracle} relative to the repository root (the directory holding {@code model-runtime}). */
    public static Path dir() {
        Path cwd = Path.of("").toAbsolutePath();
        Path p = cwd;
        while (p != null && !Files.isDirectory(p.resolve("model-runtime"))) {
            p = p.getParent();
        }
        return (p == null ? cwd : p).resolve("../shared/oracle").normalize();
    }

    /** {@code models/<stem>.gguf}; skips the test when it is not there. */
    public static Path model(String stem) {
        Path f = dir().resolve("models").resolve(stem + ".gguf");
        assumeTrue(Files.isRegularFile(f), "oracle model not available: " + f);
        return f;
    }

    /** {@code golden/<name>.json}; skips the test when it is not there. */
    public static JsonNode golden(String name) {
        Path f = dir().resolve("golden").resolve(name + ".json");
        assumeTrue(Files.isRegularFile(f), "oracle golden not available: " + f);
        try {
            return new ObjectMapper().readTree(f.toFile());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
