package io.moestream.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.moestream.runtime.gguf.GgmlType;
import io.moestream.runtime.gguf.GgufTensor;
import io.moestream.runtime.kernel.KQuantBlocks;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The kernels' own block decoding ({@code blocks.cuh}, compiled by nvcc for the host into
 * {@code src/test/cuda/blocks_host.cu}) gives every value of every block type exactly as the CPU's
 * {@link KQuantBlocks} dequantizes it: the code the GPU runs, checked without a GPU. Skipped without nvcc.
 */
class BlocksOnHostTest {

    static final List<GgmlType> ORDER = List.of(GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K,
            GgmlType.Q5_0, GgmlType.IQ4_NL, GgmlType.MXFP4); // the BT_* numbers of blocks.cuh
    static Path binary;

    static String nvcc() {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            if (Files.isExecutable(Path.of(dir, "nvcc"))) {
                return Path.of(dir, "nvcc").toString();
            }
        }
        return Files.isExecutable(Path.of("/usr/local/cuda/bin/nvcc")) ? "/usr/local/cuda/bin/nvcc" : null;
    }

    @BeforeAll
    static void build() throws IOException, InterruptedException {
        String nvcc = nvcc();
        assumeTrue(nvcc != null && !"none".equals(System.getenv("NVCC")), "no nvcc: the host build of blocks.cuh is not checked");
        Path dir = Files.createDirectories(Path.of("target", "blocks-host"));
        binary = dir.resolve("blocks_host");
        Process p = new ProcessBuilder(nvcc, "-std=c++17", "-O2", "-I", "src/main/cuda", "-Werror", "all-warnings", "-o",
                binary.toString(), "src/test/cuda/blocks_host.cu").redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(300, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as(log).isZero();
    }

    @ParameterizedTest
    @EnumSource(names = {"Q5_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "MXFP4"})
    void theKernelsDecodingIsTheCpus(GgmlType type) throws IOException, InterruptedException {
        int rows = 9, cols = 512;
        GgufTensor t = TestWeights.blocks("w", type, 1, rows, cols, 1000 + type.ordinal(), false);
        byte[] bytes = new byte[t.bytes().capacity()];
        t.bytes().get(0, bytes);
        Path in = Files.write(binary.resolveSibling("in-" + type + ".bin"), bytes);
        Process p = new ProcessBuilder(binary.toString(), String.valueOf(ORDER.indexOf(type)), String.valueOf(cols), String.valueOf(rows))
                .redirectInput(in.toFile()).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as(new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8)).isZero();
        String[] lines = out.split("\n");
        assertThat(lines).hasSize(rows * cols);
        int rowBytes = (int) type.bytesFor(cols);
        float[] cpu = new float[cols];
        for (int r = 0; r < rows; r++) {
            KQuantBlocks.dequantize(type, java.util.Arrays.copyOfRange(bytes, r * rowBytes, (r + 1) * rowBytes), cols, cpu, 0);
            for (int i = 0; i < cols; i++) {
                float host = Float.intBitsToFloat(Integer.parseUnsignedInt(lines[r * cols + i], 16));
                assertThat(host).as("%s row %d value %d", type, r, i).isEqualTo(cpu[i]);
            }
        }
    }
}
