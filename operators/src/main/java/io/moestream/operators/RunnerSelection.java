package io.moestream.operators;

import io.moestream.runtime.backend.Backend;
import io.moestream.runtime.backend.BackendForward;
import io.moestream.runtime.backend.Backends;
import io.moestream.runtime.model.Engine;
import io.moestream.runtime.model.Model;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import org.apache.flink.api.common.externalresource.ExternalResourceInfo;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@link StepRunner} for {@code moestream.backend} ({@link InferenceConfig#backend()}):
 *
 * <ul>
 *   <li>{@code cpu}: the CPU engine's batched step ({@link StepRunner#batched}), as always;</li>
 *   <li>{@code auto} (default): the best installed backend that can run here
 *       ({@link Backends#select}); when that is the CPU, the CPU engine, and {@code Backends} logs
 *       one INFO line saying why; also the CPU engine when the GPU backend cannot hold the model;</li>
 *   <li>{@code cuda} (or another installed provider): that backend on the slot's GPU, through
 *       {@link BackendStepRunner}; a {@code BackendUnavailableException} saying why it cannot run
 *       fails the job.</li>
 * </ul>
 */
final class RunnerSelection {

    private static final Logger LOG = LoggerFactory.getLogger(RunnerSelection.class);

    private RunnerSelection() {}

    /** The runner for {@code choice} on GPU {@code device} (0 when Flink assigned none). */
    static StepRunner open(String choice, int device, Model model, InferenceConfig config) {
        String want = choice.trim().toLowerCase(Locale.ROOT);
        Optional<Backend> selected = Backends.select(want, device);
        if (selected.isEmpty()) { // cpu, or auto found no GPU backend (and said why)
            return StepRunner.batched(new Engine(model));
        }
        Backend backend = selected.get();
        BackendStepRunner runner;
        try {
            runner = new BackendStepRunner(model, backend, options(model, config));
        } catch (IllegalStateException e) {
            if (!want.equals("auto")) {
                throw e;
            }
            LOG.info("backend=auto: using the CPU engine ({})", e.getMessage()); // e.g. a weight type the GPU kernels lack
            return StepRunner.batched(new Engine(model));
        }
        LOG.info("backend={}: steps run on {} (KV pool: {} blocks of {} positions, {})", want, runner.backendName(),
                options(model, config).kvBlocks(), config.kvState().blockTokens(), config.kvState().kvCodec());
        return runner;
    }

    /**
     * Pool and pass sizes of the backend path: a step is one pass of up to {@code tokenBudget} rows,
     * and the pool holds a whole context window for each running sequence plus a document part being
     * prefilled, in the configured codec and block size.
     */
    static BackendForward.Options options(Model model, InferenceConfig config) {
        int blockTokens = config.kvState().blockTokens();
        int sequences = config.maxSequences() + 1;
        int perSequence = (model.contextLength() + blockTokens - 1) / blockTokens;
        return new BackendForward.Options(config.tokenBudget(), sequences * perSequence, blockTokens, config.kvState().kvCodec(),
                BackendForward.Options.openBlocksFor(sequences, config.tokenBudget(), blockTokens));
    }

    /**
     * The GPU of subtask {@code subtask} from Flink's {@code gpu} external resource (property
     * {@code index} of each device): with several, subtasks are spread over the sorted indices; 0 when
     * Flink assigned none.
     */
    static int deviceIndex(Collection<ExternalResourceInfo> gpus, int subtask) {
        List<Integer> indices = new ArrayList<>();
        for (ExternalResourceInfo gpu : gpus) {
            gpu.getProperty("index").ifPresent(i -> indices.add(Integer.parseInt(i.trim())));
        }
        if (indices.isEmpty()) {
            return 0;
        }
        indices.sort(null);
        return indices.get(subtask % indices.size());
    }
}
