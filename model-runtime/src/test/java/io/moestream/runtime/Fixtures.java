package io.moestream.runtime;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/**
 * Test fixtures of the llama.cpp oracle. The Q8_0/Q4_0 files of each architecture are copied into
 * {@code src/test/resources/oracle/}; the F32/F16 files are read from {@code ../shared/oracle} and the
 * tests that need them are skipped where it is absent.
 */
public final class Fixtures {

    public static final String TINY_LLAMA = "tiny-llama-q8_0";
    public static final String TINY_MIXTRAL = "tiny-mixtral-q8_0";
    public static final String TINY_QWEN3MOE = "tiny-qwen3moe-q8_0";
    public static final String TINY_QWEN2MOE = "tiny-qwen2moe-q8_0";
    /** bailingmoe2 (Ling 2.0): group-limited sigmoid routing, shared expert, fused QKV, NextN block. */
    public static final String TINY_GROUPMOE = "tiny-groupmoe-q8_0";

    private Fixtures() {}

    /**
     * Every oracle model in {@code src/test/resources/oracle/}: the stems of the {@code .gguf} files
     * that have a golden {@code .json} beside them, sorted.
     */
    public static List<String> oracleModels() {
        Path dir = resource("/oracle/README.md").getParent();
        try (Stream<Path> files = Files.list(dir)) {
            return files.map(f -> f.getFileName().toString())
                    .filter(n -> n.endsWith(".gguf"))
                    .map(n -> n.substring(0, n.length() - ".gguf".length()))
                    .filter(stem -> Files.exists(dir.resolve(stem + ".json")))
                    .sorted()
                    .toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * The full llama.cpp oracle ({@code ../shared/oracle} beside the repository: {@code models/*.gguf}
     * and {@code golden/*.json}), or null when this checkout has none.
     */
    public static Path sharedOracle() {
        Path module = Path.of("").toAbsolutePath();
        for (Path root = module; root != null; root = root.getParent()) {
            Path oracle = root.resolveSibling("shared").resolve("oracle");
            if (Files.isDirectory(root.resolve(".git")) || Files.isRegularFile(root.resolve(".git"))) {
                return Files.isDirectory(oracle.resolve("models")) ? oracle : null;
            }
        }
        return null;
    }

    /**
     * The GGUF file of an oracle model stem: the copy in test resources, else {@code ../shared/oracle}
     * (the test is skipped when neither has it).
     */
    public static Path model(String stem) {
        return Fixtures.class.getResource("/oracle/" + stem + ".gguf") != null
                ? resource("/oracle/" + stem + ".gguf") : SharedOracle.model(stem);
    }

    /**
     * The golden JSON of an oracle model stem: the trimmed copy in test resources (see oracle/README.md
     * there), else the full one in {@code ../shared/oracle} (the test is skipped when neither has it).
     */
    public static JsonNode golden(String stem) {
        try (InputStream in = Fixtures.class.getResourceAsStream("/oracle/" + stem + ".json")) {
            if (in == null) {
                return SharedOracle.golden(stem);
            }
            return new ObjectMapper().readTree(in);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).asInt();
        }
        return out;
    }

    private static Path resource(String name) {
        URL url = Fixtures.class.getResource(name);
        if (url == null) {
            throw new IllegalStateException("missing test resource " + name);
        }
        try {
            return Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }
}
