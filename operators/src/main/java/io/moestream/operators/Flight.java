package io.moestream.operators;

import io.moestream.runtime.model.StepPlan;
import io.moestream.runtime.sched.Request;
import io.moestream.runtime.sched.StepPlanner;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;

/**
 * A step of the {@link StepLoop}, planned and launched: the runs it computes (in chunk order), how
 * the planner saw each of them at launch (their requests change on the engine thread meanwhile),
 * those that certainly end with it, its prefill and decode tokens, all the admitted work when it was
 * launched (including runs it gives no tokens), and what it hands back once computed.
 */
record Flight(EngineThread.Step step, List<Running> stepped, Map<Running, StepPlanner.Planned> seen,
        Set<Running> ending, int prefill, int decode, List<Running> running, CompletableFuture<StepLoop.Done> done) {

    /** A request as the planner saw it when its step was launched. */
    private record Seen(String tenant, boolean decoding, int tokensWanted, int positions) implements StepPlanner.Planned {

        static Seen of(Request r) {
            return new Seen(r.tenant(), r.decoding(), r.tokensWanted(), r.positions());
        }
    }

    /**
     * The next step over {@code runs} (the planner's tokens for each; each run that gets tokens takes
     * its chunk); null when it would compute nothing.
     */
    static Flight plan(StepPlanner planner, List<Running> runs) {
        if (runs.isEmpty()) {
            return null;
        }
        int[] tokens = planner.allocate(requests(runs));
        List<Running> stepped = new ArrayList<>();
        List<StepRunner.Chunk> chunks = new ArrayList<>();
        Map<Running, StepPlanner.Planned> seen = new IdentityHashMap<>();
        Set<Running> ending = Collections.newSetFromMap(new IdentityHashMap<>());
        int prefill = 0;
        int decode = 0;
        for (int i = 0; i < tokens.length; i++) {
            if (tokens[i] == 0) {
                continue;
            }
            Running r = runs.get(i);
            if (endsWith(r, tokens[i])) {
                ending.add(r);
            }
            if (r.request.decoding()) {
                decode += tokens[i];
            } else {
                prefill += tokens[i];
            }
            seen.put(r, Seen.of(r.request));
            StepPlan.Sequence s = r.request.chunk(tokens[i]);
            stepped.add(r);
            chunks.add(new StepRunner.Chunk(s.cache(), s.tokens(), s.logits()));
        }
        if (chunks.isEmpty()) {
            return null; // every prefill waits for a step with room for more than one token
        }
        return new Flight(new EngineThread.Step(chunks), stepped, seen, ending, prefill, decode, List.copyOf(runs),
                new CompletableFuture<>());
    }

    /**
     * Whether {@code r} certainly finishes with its next chunk of {@code n} tokens: a document part's
     * last chunk; the chunk whose sample reaches {@code max_tokens}; for a conversation turn, the feed
     * of its final token. (An end-of-generation token cannot be foreseen: its place frees a step later.)
     */
    private static boolean endsWith(Running r, int n) {
        Request q = r.request;
        if (!q.decoding()) {
            boolean last = n == q.tokensWanted();
            return last && (r instanceof PartRun || !r.writesBack() && ((PromptRun) r).maxTokens <= 1);
        }
        PromptRun p = (PromptRun) r;
        return p.writesBack() ? q.sampled() >= p.maxTokens : q.sampled() + 1 >= p.maxTokens;
    }

    /** The requests as the planner sees them, in the same order. */
    private static List<Request> requests(List<Running> runs) {
        List<Request> requests = new ArrayList<>(runs.size());
        for (Running r : runs) {
            requests.add(r.request);
        }
        return requests;
    }
}
