package io.moestream.runtime.backend;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;

import org.junit.jupiter.api.Test;

class BackendsTest {

    /** A provider that is installed but cannot run, like CUDA without a driver. */
    static BackendProvider unavailable(String name, String reason) {
        return new BackendProvider() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public int priority() {
                return 10;
            }

            @Override
            public String unavailableReason(int deviceIndex) {
                return reason;
            }

            @Override
            public Backend open(int deviceIndex) {
                throw new BackendUnavailableException(reason);
            }
        };
    }

    @Test
    void autoFallsBackToTheCpuEngineWhenTheGpuCannotRun() {
        assertThat(Backends.select("auto", 0, List.of(unavailable("cuda", "libcuda.so.1 not found")))).isEmpty();
        assertThat(Backends.select(null, 0, List.of())).isEmpty();
    }

    @Test
    void forcedBackendFailsWithTheReason() {
        assertThatThrownBy(() -> Backends.select("cuda", 1, List.of(unavailable("cuda", "libcuda.so.1 not found"))))
                .isInstanceOf(BackendUnavailableException.class)
                .hasMessageContaining("backend=cuda cannot run on device 1: libcuda.so.1 not found");
        assertThatThrownBy(() -> Backends.select("cuda", 0, List.of()))
                .isInstanceOf(BackendUnavailableException.class)
                .hasMessageContaining("not installed");
        assertThat(Backends.select(" CPU ", 3, List.of(unavailable("cuda", "x")))).isEmpty();
    }
}
