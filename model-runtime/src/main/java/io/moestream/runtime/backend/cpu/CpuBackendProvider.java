package io.moestream.runtime.backend.cpu;

import io.moestream.runtime.backend.Backend;
import io.moestream.runtime.backend.BackendProvider;

/** The always-available CPU backend (device index ignored). */
public final class CpuBackendProvider implements BackendProvider {

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public int priority() {
        return 0;
    }

    @Override
    public String unavailableReason(int deviceIndex) {
        return null;
    }

    @Override
    public Backend open(int deviceIndex) {
        return new CpuBackend();
    }
}
