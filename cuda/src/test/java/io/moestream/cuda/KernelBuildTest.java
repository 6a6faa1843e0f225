package io.moestream.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;

/** The build compiled every kernel file (when nvcc exists) and every kernel the backend launches exists. */
class KernelBuildTest {

    static boolean nvccPresent() {
        if ("none".equals(System.getenv("NVCC"))) {
            return false;
        }
        for (String dir : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            if (Files.isExecutable(Path.of(dir, "nvcc"))) {
                return true;
            }
        }
        return Files.isExecutable(Path.of("/usr/local/cuda/bin/nvcc"));
    }

    static List<String> sourceStems() throws IOException {
        Path src = Path.of(System.getProperty("moestream.cuda.source", "src/main/cuda"));
        List<String> out = new ArrayList<>();
        try (Stream<Path> files = Files.list(src)) {
            files.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".cu")).sorted()
                    .forEach(n -> out.add(n.substring(0, n.length() - 3)));
        }
        return out;
    }

    @Test
    void withoutNvccTheManifestSaysNoKernelsWereBuilt() {
        assumeFalse(nvccPresent(), "nvcc is on the PATH: the kernels were built");
        KernelManifest m = KernelManifest.load();
        assertThat(m.built()).isFalse();
        assertThat(m.unavailableReason()).contains("no CUDA kernels were built");
    }

    @Test
    void everyKernelFileWasCompiledWhenNvccIsPresent() throws IOException {
        assumeTrue(nvccPresent(), "no nvcc on the PATH: no kernels to check");
        KernelManifest m = KernelManifest.load();
        assertThat(m.built()).as(String.valueOf(m.unavailableReason())).isTrue();
        assertThat(m.files()).containsExactlyInAnyOrderElementsOf(sourceStems());
        for (String f : m.files()) {
            assertThat(m.image(f)).as(f + ".fatbin").hasSizeGreaterThan(1000);
            assertThat(m.entries(f)).as("entries of " + f).isNotEmpty();
        }
    }

    @Test
    void everyLaunchedKernelIsBuilt() {
        KernelManifest m = KernelManifest.load();
        assumeTrue(m.built(), () -> "no kernels were built: " + m.unavailableReason());
        List<String> all = new ArrayList<>();
        m.files().forEach(f -> all.addAll(m.entries(f)));
        assertThat(all).containsAll(CudaBackend.kernelNames());
        assertThat(all).doesNotHaveDuplicates();
    }
}
