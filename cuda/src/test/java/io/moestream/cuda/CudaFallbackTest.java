package io.moestream.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.moestream.runtime.backend.BackendProvider;
import io.moestream.runtime.backend.BackendUnavailableException;
import io.moestream.runtime.backend.Backends;

import org.junit.jupiter.api.Test;

/** Without a driver (CI), auto falls back to the CPU engine and a forced cuda says why. */
class CudaFallbackTest {

    @Test
    void theCudaProviderIsFoundByServiceLoader() {
        assertThat(Backends.providers()).extracting(BackendProvider::name).contains("cuda");
    }

    @Test
    void autoFallsBackAndForcedCudaExplains() {
        String reason = new CudaBackendProvider().unavailableReason(0);
        assumeTrue(reason != null, "a usable GPU is present; the fallback is not exercised here");
        assertThat(Backends.select("auto", 0)).as("auto without a GPU: the CPU engine").isEmpty();
        assertThatThrownBy(() -> Backends.select("cuda", 0))
                .isInstanceOf(BackendUnavailableException.class)
                .hasMessageContaining("backend=cuda cannot run on device 0")
                .hasMessageContaining(reason);
        // asking twice gives the same answer (the failed native load is remembered, not retried)
        assertThat(new CudaBackendProvider().unavailableReason(0)).isEqualTo(reason);
    }
}
