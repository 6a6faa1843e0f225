package io.moestream.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The device kit's preflight: models found and loaded, a missing or corrupt one and a missing driver reported by status. */
class DeviceKitPreflightTest {

    static final Path ORACLE = Path.of("../model-runtime/src/test/resources/oracle");

    final ByteArrayOutputStream buf = new ByteArrayOutputStream();
    final PrintStream out = new PrintStream(buf, true, StandardCharsets.UTF_8);

    @Test
    void loadsTheInTreeOracleModelsAndNamesTheMissingDriver(@TempDir Path types) {
        String reason = new CudaBackendProvider().unavailableReason(0);
        assumeTrue(reason != null, "a usable GPU is present");
        int status = DeviceKitPreflight.check(ORACLE, types, 0, out);
        String text = buf.toString(StandardCharsets.UTF_8);
        assertThat(status).as(text).isEqualTo(DeviceKitPreflight.NO_DEVICE);
        assertThat(text).contains("tiny-mixtral-q8_0.gguf", "tiny-qwen3moe-q4_0.gguf", "no block-type models", reason);
    }

    @Test
    void noOracleModelsIsAnError(@TempDir Path empty) {
        assertThat(DeviceKitPreflight.check(empty.resolve("absent"), empty, 0, out)).isEqualTo(DeviceKitPreflight.BAD_MODELS);
        assertThat(buf.toString(StandardCharsets.UTF_8)).contains("no directory");
    }

    @Test
    void aTruncatedModelIsNamed(@TempDir Path dir) throws IOException {
        byte[] whole = Files.readAllBytes(ORACLE.resolve("tiny-llama-q4_0.gguf"));
        Files.write(dir.resolve("tiny-llama-q4_0.gguf"), java.util.Arrays.copyOf(whole, whole.length / 2));
        assertThat(DeviceKitPreflight.check(ORACLE, dir, 0, out)).isEqualTo(DeviceKitPreflight.BAD_MODELS);
        assertThat(buf.toString(StandardCharsets.UTF_8)).containsPattern("tiny-llama-q4_0.gguf +FAILED");
    }
}
