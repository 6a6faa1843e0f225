package io.moestream.runtime.model;

import io.moestream.runtime.sched.Batch;
import io.moestream.runtime.sched.Request;
import io.moestream.runtime.sched.StepPlanner;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * One {@link Engine#generate} call: checks the requests, then runs them as one {@link Batch} (the
 * shared {@link StepPlanner} and {@link Request} lifecycle). Each request samples from its own
 * logits with its own sampler, and a step's arithmetic per token does not depend on the batch, so
 * results equal running each request alone.
 */
final class Generation {

    /** Tokens per step; prompts longer than what is left of it are prefilled in chunks. */
    static final int TOKEN_BUDGET = 256;

    private final Engine engine;
    private final List<Request> requests = new ArrayList<>();

    Generation(Engine engine, List<GenerationRequest> requests) {
        this.engine = engine;
        Model model = engine.model();
        Map<KvCache, Boolean> seen = new IdentityHashMap<>();
        for (int i = 0; i < requests.size(); i++) {
            GenerationRequest r = requests.get(i);
            if (seen.put(r.cache(), Boolean.TRUE) != null) {
                throw new IllegalArgumentException("requests " + i + " and an earlier one share a KV cache");
            }
            if (r.promptIds().length == 0) {
                throw new IllegalArgumentException("request " + i + " has an empty prompt");
            }
            if (r.params().maxTokens() <= 0) {
                throw new IllegalArgumentException("request " + i + ": maxTokens must be > 0, got " + r.params().maxTokens());
            }
            engine.checkFits(r.cache(), (long) r.promptIds().length + r.params().maxTokens(),
                    "request " + i + " (prompt " + r.promptIds().length + " + maxTokens " + r.params().maxTokens() + ")");
            for (int id : r.promptIds()) {
                if (id < 0 || id >= model.config().vocabSize()) {
                    throw new IllegalArgumentException("request " + i + ": token id " + id + " is outside the vocabulary 0.."
                            + (model.config().vocabSize() - 1));
                }
            }
            this.requests.add(Request.generate("", r, model.tokenizer()));
        }
    }

    List<GenerationResult> run() {
        int n = Math.max(1, requests.size());
        Batch.run(engine, StepPlanner.singleTenant(Math.max(TOKEN_BUDGET, n), n), requests);
        List<GenerationResult> out = new ArrayList<>(requests.size());
        for (Request r : requests) {
            out.add(r.result());
        }
        return out;
    }
}
