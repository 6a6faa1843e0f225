package io.moestream.runtime.model;

import io.moestream.runtime.graph.Forward;
import io.moestream.runtime.kernel.MatmulPool;

import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * Runs a model on the CPU: the one forward pass ({@link Forward}: the model's architecture over the
 * shared blocks) executed by the CPU backend ({@link CpuOps}), for a batch: {@link #step} computes
 * many sequences' new tokens together, prefill chunks and decode tokens mixed, and gives each
 * sequence bit-identical results to running it alone. The logits are bit-identical to llama.cpp's
 * CPU backend (docs/runtime.md).
 *
 * <p>Not thread-safe: one engine per thread (per Flink slot); it owns its activation buffers.
 */
public final class Engine {

    /** {@link #forward} splits longer prompts into steps of this many tokens (bounds the buffers). */
    static final int MAX_FORWARD_CHUNK = 512;

    private final Model model;
    private final ModelConfig c;
    private final CpuAttention attention;
    private final CpuOps ops;
    private final Forward forward;

    public Engine(Model model) {
        this.model = model;
        this.c = model.config();
        this.attention = new CpuAttention(c);
        this.ops = new CpuOps(model, attention);
        this.forward = Forward.of(c, ops);
    }

    public Model model() {
        return model;
    }

    /** K/V bytes the attention read from the caches since the last {@link #resetKvBytesRead()} (decode bandwidth). */
    public long kvBytesRead() {
        return attention.bytesRead();
    }

    public void resetKvBytesRead() {
        attention.resetBytesRead();
    }

    /**
     * Appends {@code tokens} to {@code cache} (a prefill) and returns the logits (vocab size) at the
     * last of them.
     */
    public float[] forward(KvCache cache, int[] tokens) {
        if (tokens.length == 0) {
            throw new IllegalArgumentException("forward needs at least one token");
        }
        checkTokens(tokens);
        checkFits(cache, tokens.length, "forward of " + tokens.length + " tokens");
        float[] logits = null;
        for (int from = 0; from < tokens.length; from += MAX_FORWARD_CHUNK) {
            int to = Math.min(tokens.length, from + MAX_FORWARD_CHUNK);
            logits = step(StepPlan.of(new StepPlan.Sequence(cache, Arrays.copyOfRange(tokens, from, to), to == tokens.length)))
                    .logits(0);
        }
        return logits;
    }

    /**
     * One forward pass over all sequences of the plan: appends each one's tokens to its cache and
     * returns the logits where asked.
     *
     * @throws IllegalArgumentException when a sequence has no tokens or an out-of-vocabulary token,
     *                                  two share a cache, or a cache would exceed the context length
     */
    public StepResult step(StepPlan plan) {
        Map<KvCache, Boolean> seen = new IdentityHashMap<>();
        for (StepPlan.Sequence s : plan.sequences()) {
            if (s.tokens().length == 0) {
                throw new IllegalArgumentException("a step sequence needs at least one token");
            }
            if (seen.put(s.cache(), Boolean.TRUE) != null) {
                throw new IllegalArgumentException("two sequences of a step share a KV cache");
            }
            checkTokens(s.tokens());
            checkFits(s.cache(), s.tokens().length, "step of " + s.tokens().length + " tokens");
        }
        MatmulPool.get().wake();
        CpuStep step = new CpuStep(plan);
        ops.begin(step);
        forward.run();
        return result(plan, step);
    }

    private static StepResult result(StepPlan plan, CpuStep step) {
        float[][] logits = new float[plan.sequences().size()][];
        int wanted = 0;
        for (int i = 0; i < logits.length; i++) {
            StepPlan.Sequence s = plan.sequences().get(i);
            s.cache().commit(s.tokens());
            if (s.logits()) {
                logits[i] = step.logits[wanted++];
            }
        }
        return new StepResult(Arrays.asList(logits));
    }

    private void checkTokens(int[] tokens) {
        for (int t : tokens) {
            if (t < 0 || t >= c.vocabSize()) {
                throw new IllegalArgumentException("token id " + t + " is outside the vocabulary 0.." + (c.vocabSize() - 1));
            }
        }
    }

    void checkFits(KvCache cache, long more, String what) {
        if (cache.layers() != c.layers() || cache.kvDim() != c.kvDim()) {
            throw new IllegalArgumentException("KV cache shape " + cache.layers() + "x" + cache.kvDim()
                    + " does not belong to model " + model.name());
        }
        if (cache.length() + more > c.contextLength()) {
            throw new IllegalArgumentException(what + " after " + cache.length() + " cached positions needs "
                    + (cache.length() + more) + " positions, more than the context length " + c.contextLength());
        }
    }

    /**
     * Runs many requests as one batch with continuous batching: a {@link io.moestream.runtime.sched.StepPlanner}
     * plans each step (decode tokens first, then prefill chunks, within a token budget), this engine
     * computes it. Results are in request order and equal to running each request alone.
     *
     * <p>Per step a sequence samples a token from its current logits; EOS ends it (STOP, EOS not in
     * the result), a stop sequence in the decoded text ends it (STOP_SEQUENCE, text cut before the
     * stop sequence), reaching {@code maxTokens} ends it (LENGTH); otherwise the token is fed to get
     * the next logits. With {@code commitAnswer} the final sampled token (EOS included) is fed as
     * well, so the cache holds the whole turn.
     *
     * @throws IllegalArgumentException when a prompt is empty, two requests share a cache, or a
     *                                  request's cached + prompt + maxTokens positions exceed the context length
     */
    public List<GenerationResult> generate(List<GenerationRequest> requests) {
        return new Generation(this, requests).run();
    }
}
