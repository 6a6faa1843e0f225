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
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The step loop. It admits queued work as the {@link StepPlanner} allows (prompts through
 * {@link PromptIntake}, document parts through {@link DocumentIngestion}), computes forward steps
 * over everything running ({@link StepRunner}: decode tokens and prefill chunks of prompts and
 * document parts, within the token budget and tenant share) on the {@link EngineThread}, where each
 * {@code Request} then samples, and answers whatever finished: a Generation emitted (a conversation's
 * cache stored), a document part stored.
 *
 * <p>Pipelined: while step N computes on the engine thread, the task thread answers and stores what
 * step N-1 finished, admits queued work (keyed-state reads) for step N+1 and takes input, timers
 * and checkpoint barriers. When step N is done (its requests sampled on the engine thread;
 * {@link #completed}, a mail), step N+1 is launched at once, and then the rest is done. Work is admitted into the places that
 * are free after the step in flight: those of running requests that certainly end with it
 * ({@code max_tokens} reached, a part's last chunk) count as free, so such a place is not left
 * empty for a step. Keyed state and outputs are touched only on the task thread, and only between
 * whole outcomes, so a checkpoint at any time sees every unanswered item in state.
 */
final class StepLoop {

    private static final Logger LOG = LoggerFactory.getLogger(StepLoop.class);

    private final StepPlanner planner;
    private final StepRunner runner;
    private final EngineThread engine;
    private final RequestQueue queue;
    private final PromptIntake intake;
    private final DocumentIngestion ingestion;
    private final ContextStore store;
    private final Keys keys;
    private final Outputs out;
    private final InferenceMetrics metrics;
    private final String modelName;
    private final Consumer<Flight> whenDone;
    /** Admitted work, in admission order. */
    private final List<Running> running = new ArrayList<>();
    /** The step being computed, or null. */
    private Flight flight;

    /** What the loop drives (more than five, so a record). */
    record Parts(StepRunner runner, EngineThread engine, RequestQueue queue, PromptIntake intake,
            DocumentIngestion ingestion, ContextStore store, Keys keys, Outputs out, InferenceMetrics metrics) {}

    /**
     * A step in flight: the runs it computes (in chunk order), how the planner saw each of them at
     * launch (their requests change on the engine thread meanwhile), those that certainly end with
     * it, and its prefill and decode tokens.
     */
    record Flight(EngineThread.Step step, List<Running> stepped, Map<Running, StepPlanner.Planned> seen,
            Set<Running> ending, int prefill, int decode) {}

    /** A request as the planner saw it when its step was launched. */
    private record Seen(String tenant, boolean decoding, int tokensWanted, int positions) implements StepPlanner.Planned {

        static Seen of(Request r) {
            return new Seen(r.tenant(), r.decoding(), r.tokensWanted(), r.positions());
        }
    }

    /** A run that left the loop: finished, or failed with {@code failure}. */
    private record Ended(Running run, RuntimeException failure) {}

    /**
     * @param whenDone called on the engine thread when a step is computed; hands it to the task
     *                 thread, which then calls {@link #completed}
     */
    StepLoop(InferenceConfig config, String modelName, Parts parts, Consumer<Flight> whenDone) {
        this.planner = new StepPlanner(config.tokenBudget(), config.attentionBudget(), config.maxSequences(), config.tenantShare());
        this.modelName = modelName;
        this.runner = parts.runner();
        this.engine = parts.engine();
        this.queue = parts.queue();
        this.intake = parts.intake();
        this.ingestion = parts.ingestion();
        this.store = parts.store();
        this.keys = parts.keys();
        this.out = parts.out();
        this.metrics = parts.metrics();
        this.whenDone = whenDone;
    }

    int running() {
        return running.size();
    }

    /** Whether a step is being computed. */
    boolean inFlight() {
        return flight != null;
    }

    /**
     * With no step in flight: admits what the planner allows and launches a step over the running work.
     *
     * @return whether anything happened (work admitted or answered, a step launched)
     */
    boolean step() throws Exception {
        if (flight != null) {
            return false;
        }
        boolean progress = admit();
        return launch() || progress;
    }

    /**
     * {@code done} was computed and its requests sampled: the next step is launched, what finished is
     * answered or stored, and queued work is admitted for the step after. Nothing when {@code done}
     * was handled already ({@link #drain}).
     */
    void completed(Flight done) throws Exception {
        if (done != flight) {
            return;
        }
        flight = null;
        List<Ended> ended = apply(done);
        boolean launched = launch();
        for (Ended e : ended) {
            if (e.failure() == null) {
                finish(e.run());
            } else {
                fail(e.run(), e.failure());
            }
        }
        admit();
        if (!launched) {
            launch();
        }
    }

    /** Runs steps on the calling (task) thread, each awaited, until no work is pending (end of input). */
    void drain() throws Exception {
        while (true) {
            if (flight != null) {
                flight.step().await();
                completed(flight);
            } else if (queue.pending() == 0) {
                return;
            } else if (!step()) {
                throw new IllegalStateException(queue.pending() + " items are pending but none can run");
            }
        }
    }

    /** Plans the next step over the running work and hands it to the engine thread; false when nothing runs. */
    private boolean launch() {
        if (running.isEmpty()) {
            return false;
        }
        int[] tokens = planner.allocate(requests(running));
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
            Running r = running.get(i);
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
            return false; // every prefill waits for a step with room for more than one token
        }
        Flight f = new Flight(new EngineThread.Step(chunks), stepped, seen, ending, prefill, decode);
        flight = f;
        engine.launch(f.step(), step -> sample(f), () -> whenDone.accept(f));
        return true;
    }

    /**
     * On the engine thread, right after the step: each request that ran takes its outcome and
     * samples (so the task thread, which needs the sampled tokens for the next step, has only
     * bookkeeping left).
     */
    private static void sample(Flight f) {
        StepRunner.Outcome outcome = f.step().outcome();
        long nanos = f.step().nanos();
        int total = f.prefill() + f.decode();
        for (int j = 0; j < f.stepped().size(); j++) {
            if (outcome.failures()[j] == null) {
                int n = f.step().chunks.get(j).tokens().length;
                f.stepped().get(j).request.computed(n, outcome.logits()[j], nanos * n / total);
            }
        }
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

    /** The step's outcome (its requests sampled on the engine thread): returns the requests that finished or failed. */
    private List<Ended> apply(Flight f) throws Exception {
        StepRunner.Outcome outcome = f.step().await();
        metrics.stepTook(f.step().nanos());
        long now = keys.now();
        List<Ended> ended = new ArrayList<>();
        Set<Running> gone = Collections.newSetFromMap(new IdentityHashMap<>());
        for (int j = 0; j < f.stepped().size(); j++) {
            Running r = f.stepped().get(j);
            RuntimeException failure = outcome.failures()[j];
            if (failure == null) {
                if (r instanceof PromptRun p) {
                    p.sampledAt(now);
                }
                if (!r.request.finished()) {
                    continue;
                }
            }
            runner.detach(r.request.cache(), failure == null && r.writesBack()); // before the next step uses the runner
            ended.add(new Ended(r, failure));
            gone.add(r);
        }
        running.removeIf(gone::contains);
        metrics.step(f.prefill() + f.decode(), f.stepped().size(), f.prefill(), f.decode());
        return ended;
    }

    /** The requests as the planner sees them, in the same order. */
    private static List<Request> requests(List<Running> runs) {
        List<Request> requests = new ArrayList<>(runs.size());
        for (Running r : runs) {
            requests.add(r.request);
        }
        return requests;
    }

    /**
     * The running work that stays after the step in flight, as the planner sees it: a request in the
     * step as it was at launch (the engine thread is changing it), the others as they are.
     */
    private List<StepPlanner.Planned> staying() {
        List<StepPlanner.Planned> staying = new ArrayList<>(running.size());
        for (Running r : running) {
            StepPlanner.Planned seen = flight == null ? null : flight.seen().get(r);
            if (seen == null) {
                staying.add(r.request);
            } else if (!flight.ending().contains(r)) {
                staying.add(seen);
            }
        }
        return staying;
    }

    /**
     * Admits queued work into the places free for the next step to be planned; answers what cannot
     * run with an error.
     */
    private boolean admit() throws Exception {
        boolean progress = false;
        int limit = planner.maxSequences();
        while (queue.queued() > 0) {
            List<StepPlanner.Planned> staying = staying();
            if (staying.size() >= limit) {
                break;
            }
            List<String> tenants = planner.admissions(staying, queue.admissible(limit - staying.size()));
            if (tenants.isEmpty()) {
                break;
            }
            boolean answered = false;
            for (String tenant : tenants) {
                RequestQueue.Queued q = queue.take(tenant);
                if (q == null) {
                    continue;
                }
                progress = true;
                keys.select(q.key());
                long now = keys.now();
                Running r = q.part() != null ? ingestion.prepare(q, now) : intake.prepare(q, now);
                if (r == null) {
                    answered = true;
                    if (q.exclusive()) {
                        queue.release(q.key());
                    }
                } else {
                    running.add(r);
                    if (r instanceof PromptRun) {
                        ProgressStats.IN_FLIGHT.increment();
                    }
                }
            }
            if (!answered) {
                break; // otherwise the freed places can take more
            }
        }
        return progress;
    }

    /** Answers a finished prompt (a conversation's cache stored with it) or stores a prefilled part. */
    private void finish(Running r) throws Exception {
        long now = keys.now();
        keys.select(r.key());
        if (r instanceof PartRun part) {
            ingestion.finish(part, now);
            return;
        }
        PromptRun p = (PromptRun) r;
        if (p.conversation()) {
            ContextMeta next = p.meta == null
                    ? ContextMeta.conversationStarted(p.tenant(), p.prompt().getContextId(), p.request.cache().length(), now)
                    : p.meta.withTurn(p.request.cache().length(), now);
            store.store(p.request.cache(), next, p.meta, store.bytes(p.meta));
            queue.release(p.key());
        }
        intake.remove(p.queued);
        out.generation(p.toGeneration(modelName, intake.answer(p.prompt(), p.request.result().text())));
        ProgressStats.IN_FLIGHT.decrement();
        long arrival = p.pending().arrivalMillis();
        metrics.generation(p.request.cachedTokens(), Math.max(0, p.firstTokenMillis() - arrival),
                Math.max(0, now - arrival));
    }

    private void fail(Running r, RuntimeException failure) throws Exception {
        long now = keys.now();
        keys.select(r.key());
        if (r instanceof PartRun part) {
            ingestion.fail(part, failure, now);
            return;
        }
        PromptRun p = (PromptRun) r;
        LOG.warn("request {} failed", p.prompt().getRequestId(), failure);
        if (p.conversation()) {
            queue.release(p.key());
            if (p.meta == null) {
                store.contextGone(p.tenant()); // the new conversation was not created
            }
        }
        ProgressStats.IN_FLIGHT.decrement();
        intake.reject(p.queued, Outcomes.modelFailed(p.prompt(), failure, now));
    }

    /** Forgets the running work (the operator closes, after the engine thread stopped). */
    void clear() {
        ProgressStats.IN_FLIGHT.add(-running.stream().filter(r -> r instanceof PromptRun).count());
        running.clear();
        flight = null;
    }
}
