package io.moestream.operators;

import io.moestream.runtime.backend.Backend;
import io.moestream.runtime.backend.BackendForward;
import io.moestream.runtime.gguf.GgufFormatException;
import io.moestream.runtime.model.Engine;
import io.moestream.runtime.model.KvCache;
import io.moestream.runtime.model.Model;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * Runs steps on a compute {@link Backend} (the GPU) through {@link BackendForward}, with the KV of each
 * active context in the backend's paged pool: the first step of a {@link KvCache} loads its blocks
 * there ({@link BackendForward#load}, the blocks as they came from keyed state), later steps only
 * append, and {@link #detach} writes the new and changed blocks back into the cache
 * ({@link KvCache#appendFromBackend}) so that the operator stores them in keyed state as it does
 * for the engine. Blocks move as bytes in the engine's own format ({@code KvLayout}), so nothing is
 * translated.
 *
 * <p>Between {@link #step} and {@link #detach} a cache lags behind: its length and blocks are those
 * it had when it was loaded. The operator detaches a cache before it reads or stores it (a document
 * part after its prefill, a conversation turn before its answer is stored) and when a request ends.
 *
 * <p>Caches the backend pool cannot hold run on the CPU {@link Engine} instead, in the same step:
 * a context stored with another codec or block size than the pool's (the configuration changed since),
 * one with streaming heads, and a document whose heads are being classified (the engine's attention
 * observes them).
 *
 * <p>Not thread-safe: one per operator instance.
 */
final class BackendStepRunner implements StepRunner, AutoCloseable {

    private final BackendForward forward;
    private final StepRunner engine;
    private final Map<KvCache, Resident> resident = new IdentityHashMap<>();
    private long engineChunks;

    /** A cache whose KV lives in the pool: its sequence there and the tokens appended since it was loaded. */
    private static final class Resident {
        final BackendForward.Sequence sequence;
        int[] appended = new int[16];
        int count;

        Resident(BackendForward.Sequence sequence) {
            this.sequence = sequence;
        }

        void append(int[] tokens) {
            if (count + tokens.length > appended.length) {
                appended = Arrays.copyOf(appended, Math.max(count + tokens.length, 2 * appended.length));
            }
            System.arraycopy(tokens, 0, appended, count, tokens.length);
            count += tokens.length;
        }
    }

    /** Takes ownership of {@code backend} (closed with the runner). */
    BackendStepRunner(Model model, Backend backend, BackendForward.Options options) {
        try {
            this.forward = new BackendForward(model, backend, options);
        } catch (GgufFormatException | RuntimeException e) {
            backend.close();
            throw new IllegalStateException("cannot run " + model.name() + " on backend " + backend.name() + ": " + e.getMessage(), e);
        }
        this.engine = StepRunner.batched(new Engine(model));
    }

    /** The backend's name, for logs. */
    String backendName() {
        return forward.backend().name();
    }

    /** Caches whose KV is in the pool now. */
    int residentCaches() {
        return resident.size();
    }

    /** Chunks that ran on the CPU engine because the pool could not hold their cache. */
    long engineChunks() {
        return engineChunks;
    }

    @Override
    public Outcome step(List<Chunk> chunks) {
        float[][] logits = new float[chunks.size()][];
        RuntimeException[] failures = new RuntimeException[chunks.size()];
        List<Integer> onEngine = new ArrayList<>();
        List<Integer> onBackend = new ArrayList<>();
        for (int i = 0; i < chunks.size(); i++) {
            KvCache cache = chunks.get(i).cache();
            if (resident.containsKey(cache) || fitsPool(cache)) {
                onBackend.add(i);
            } else {
                onEngine.add(i);
            }
        }
        if (!onEngine.isEmpty()) {
            engineChunks += onEngine.size();
            Outcome o = engine.step(onEngine.stream().map(chunks::get).toList());
            for (int j = 0; j < onEngine.size(); j++) {
                logits[onEngine.get(j)] = o.logits()[j];
                failures[onEngine.get(j)] = o.failures()[j];
            }
        }
        List<Integer> loaded = new ArrayList<>();
        for (int i : onBackend) {
            try {
                residentOf(chunks.get(i).cache());
                loaded.add(i);
            } catch (RuntimeException e) {
                failures[i] = e;
            }
        }
        if (!loaded.isEmpty()) {
            runOnBackend(chunks, loaded, logits, failures);
        }
        return new Outcome(logits, failures);
    }

    /**
     * One {@link BackendForward#step} for the chunks {@code which}. When it refuses them before any
     * work (a chunk beyond the context, a bad token id) they run one by one so only the bad one fails;
     * any other failure leaves the pool state of all of them unknown: they fail and leave the pool.
     */
    private void runOnBackend(List<Chunk> chunks, List<Integer> which, float[][] logits, RuntimeException[] failures) {
        List<BackendForward.Chunk> pass = new ArrayList<>(which.size());
        for (int i : which) {
            Chunk c = chunks.get(i);
            pass.add(new BackendForward.Chunk(resident.get(c.cache()).sequence, c.tokens()));
        }
        try {
            float[][] out = forward.step(pass);
            for (int j = 0; j < which.size(); j++) {
                Chunk c = chunks.get(which.get(j));
                resident.get(c.cache()).append(c.tokens());
                logits[which.get(j)] = c.logits() ? out[j] : null;
            }
        } catch (IllegalArgumentException refused) {
            if (which.size() == 1) {
                failures[which.get(0)] = refused;
                return;
            }
            for (int i : which) {
                runOnBackend(chunks, List.of(i), logits, failures);
            }
        } catch (RuntimeException e) {
            for (int i : which) {
                failures[i] = e;
                drop(chunks.get(i).cache());
            }
        }
    }

    private Resident residentOf(KvCache cache) {
        Resident r = resident.get(cache);
        if (r == null) {
            r = new Resident(forward.load(cache.length(), cache.paged()::backendBlock, cache.paged().backendTail()));
            resident.put(cache, r);
        }
        return r;
    }

    /**
     * Whether the pool can hold {@code cache}'s blocks: its codec and block size, K and V sections
     * with all heads and positions (no latent rows, streaming heads or sliding layers), no observer.
     */
    private boolean fitsPool(KvCache cache) {
        BackendForward.Options o = forward.options();
        return cache.codec().equals(o.codec()) && cache.blockTokens() == o.blockTokens()
                && cache.paged().backendCompatible() && cache.headClassifier() == null;
    }

    /**
     * The cache leaves the pool: with {@code writeBack}, the positions its steps appended are written
     * into it first (the blocks they filled and the new partial block, as dirty blocks); without, they
     * are dropped (a STATELESS or DOCUMENT prompt's cache, a failed request). No-op for a cache that
     * ran on the engine.
     */
    @Override
    public void detach(KvCache cache, boolean writeBack) {
        Resident r = resident.remove(cache);
        if (r == null) {
            return;
        }
        try {
            if (writeBack && r.count > 0) {
                cache.appendFromBackend(Arrays.copyOf(r.appended, r.count), i -> forward.sealedBlock(r.sequence, i),
                        forward.tailBlock(r.sequence));
            }
        } finally {
            forward.release(r.sequence);
        }
    }

    private void drop(KvCache cache) {
        Resident r = resident.remove(cache);
        if (r != null) {
            forward.release(r.sequence);
        }
    }

    @Override
    public void close() {
        resident.clear();
        Backend backend = forward.backend();
        try {
            forward.close();
        } finally {
            backend.close();
        }
    }
}
