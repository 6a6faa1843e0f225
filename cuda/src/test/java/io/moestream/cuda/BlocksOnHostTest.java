package io.moestream.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.moestream.runtime.gguf.GgmlType;
import io.moestream.runtime.gguf.GgufTensor;
import io.moestream.runtime.backend.ActivationQuantizer;
import io.moestream.runtime.kernel.Activation;
import io.moestream.runtime.kernel.KQuantBlocks;
import io.moestream.runtime.kernel.KQuantKernels;

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
 * {@link KQuantBlocks} dequantizes it, and its sub-block products ({@code sub_pack}, {@code sub_dot})
 * summed over a row give the CPU's {@link KQuantKernels} products up to float summation order: the
 * code the GPU runs, checked without a GPU. Skipped without nvcc.
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

    @ParameterizedTest
    @EnumSource(names = {"Q5_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "MXFP4"})
    void theKernelsSubBlockProductsAddUpToTheCpus(GgmlType type) throws IOException, InterruptedException {
        int rows = 16, cols = 1024;
        GgufTensor t = TestWeights.blocks("w", type, 1, rows, cols, 2000 + type.ordinal(), false);
        int wBytes = t.bytes().capacity();
        java.util.Random rnd = new java.util.Random(type.ordinal());
        float[] x = new float[cols];
        for (int i = 0; i < cols; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        byte[] xq = new byte[cols];
        float[] xd = new float[cols / type.blockSize()];
        if (BlockDecoding.q8k(type)) {
            BlockDecoding.quantizeQ8K(x, 0, cols, xq, xd);
        } else {
            ActivationQuantizer.quantizeQ8_0(x, 0, cols, xq, 0, xd, 0);
        }
        java.nio.ByteBuffer in = java.nio.ByteBuffer.allocate(wBytes + cols + 4 * xd.length).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        byte[] w = new byte[wBytes];
        t.bytes().get(0, w);
        in.put(w).put(xq);
        for (float d : xd) {
            in.putFloat(d);
        }
        Path file = Files.write(binary.resolveSibling("dot-" + type + ".bin"), in.array());
        Process p = new ProcessBuilder(binary.toString(), String.valueOf(ORDER.indexOf(type)), String.valueOf(cols), String.valueOf(rows), "dot")
                .redirectInput(file.toFile()).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as(new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8)).isZero();
        String[] lines = out.split("\n");
        assertThat(lines).hasSize(rows);
        Activation a = new Activation().prepare(x, 0, cols, type);
        int rowBytes = (int) type.bytesFor(cols);
        double scale = 0, diff = 0;
        for (int r = 0; r < rows; r++) {
            float cpu = KQuantKernels.dot(type, java.util.Arrays.copyOfRange(w, r * rowBytes, (r + 1) * rowBytes), cols, a);
            float host = Float.intBitsToFloat(Integer.parseUnsignedInt(lines[r], 16));
            scale = Math.max(scale, Math.abs(cpu));
            diff = Math.max(diff, Math.abs(cpu - host));
        }
        assertThat(scale).isGreaterThan(0);
        assertThat(diff / scale).as(type.toString()).isLessThan(1e-5);
    }
}
