package io.moestream.cuda;

import io.moestream.runtime.backend.Backend;
import io.moestream.runtime.backend.BackendProvider;
import io.moestream.runtime.backend.BackendUnavailableException;

/** {@code backend=cuda}: our kernels through JCuda's driver API; preferred by {@code auto} when it can run. */
public final class CudaBackendProvider implements BackendProvider {

    @Override
    public String name() {
        return "cuda";
    }

    @Override
    public int priority() {
        return 100;
    }

    @Override
    public String unavailableReason(int deviceIndex) {
        try {
            return CudaDriver.unavailableReason(deviceIndex);
        } catch (LinkageError e) {
            return "JCuda could not be loaded: " + e;
        }
    }

    @Override
    public Backend open(int deviceIndex) {
        String reason = unavailableReason(deviceIndex);
        if (reason != null) {
            throw new BackendUnavailableException(reason);
        }
        try {
            return new CudaBackend(deviceIndex);
        } catch (RuntimeException | LinkageError e) {
            throw new BackendUnavailableException("opening cuda:" + deviceIndex + " failed: " + e.getMessage(), e);
        }
    }
}
