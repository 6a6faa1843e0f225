package io.moestream.runtime.backend;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.ServiceLoader;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Chooses the device backend for {@code backend=auto|cpu|<name>}; empty means the CPU engine:
 * <ul>
 *   <li>{@code cpu}: the CPU engine.</li>
 *   <li>{@code <name>} (e.g. {@code cuda}): that provider on {@code deviceIndex}, or a
 *       {@link BackendUnavailableException} saying why it cannot run.</li>
 *   <li>{@code auto}: the available provider with the highest priority; otherwise the CPU engine, with
 *       one INFO line naming the reason (each installed provider's, or that none is installed).</li>
 * </ul>
 */
public final class Backends {

    private static final Logger LOG = LoggerFactory.getLogger(Backends.class);

    private Backends() {}

    /** Device backend for {@code choice} on {@code deviceIndex} (the GPU Flink assigned the slot; 0 when none); empty: the CPU engine. */
    public static Optional<Backend> select(String choice, int deviceIndex) {
        return select(choice, deviceIndex, providers());
    }

    /** As {@link #select(String, int)} with an explicit provider list (tests). */
    public static Optional<Backend> select(String choice, int deviceIndex, List<BackendProvider> providers) {
        String want = choice == null ? "auto" : choice.trim().toLowerCase(Locale.ROOT);
        if (want.equals("cpu")) {
            return Optional.empty();
        }
        if (!want.equals("auto")) {
            for (BackendProvider p : providers) {
                if (p.name().equals(want)) {
                    String reason = p.unavailableReason(deviceIndex);
                    if (reason != null) {
                        throw new BackendUnavailableException("backend=" + want + " cannot run on device " + deviceIndex + ": " + reason);
                    }
                    return Optional.of(p.open(deviceIndex));
                }
            }
            List<String> names = new ArrayList<>(List.of("auto", "cpu"));
            providers.forEach(p -> names.add(p.name()));
            throw new BackendUnavailableException("backend=" + want + " is not installed (choices: " + String.join(", ", names)
                    + "; the cuda backend needs the moestream-cuda jar on the class path)");
        }
        List<BackendProvider> sorted = new ArrayList<>(providers);
        sorted.sort(Comparator.comparingInt(BackendProvider::priority).reversed());
        List<String> reasons = new ArrayList<>();
        for (BackendProvider p : sorted) {
            String reason = p.unavailableReason(deviceIndex);
            if (reason == null) {
                try {
                    Backend b = p.open(deviceIndex);
                    LOG.info("backend=auto: using {}", b.name());
                    return Optional.of(b);
                } catch (BackendUnavailableException e) {
                    reason = e.getMessage();
                }
            }
            reasons.add(p.name() + ": " + reason);
        }
        if (reasons.isEmpty()) {
            LOG.info("backend=auto: using the CPU engine (no GPU backend is installed; the cuda backend needs the"
                    + " moestream-cuda jar on the class path)");
        } else {
            LOG.info("backend=auto: using the CPU engine ({})", String.join("; ", reasons));
        }
        return Optional.empty();
    }

    /** Providers on the class path. */
    public static List<BackendProvider> providers() {
        List<BackendProvider> out = new ArrayList<>();
        for (BackendProvider p : ServiceLoader.load(BackendProvider.class, Backends.class.getClassLoader())) {
            out.add(p);
        }
        return out;
    }
}
