package io.moestream.operators;

import io.moestream.runtime.sched.StepPlanner;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import org.apache.flink.util.ExceptionUtils;
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
 * <p>Pipelined, and the engine thread never waits for a wake-up of the task thread while that
 * thread keeps up: when step N is computed, the engine thread samples, takes out the requests that
 * ended (and detaches their caches), adds the work the task thread admitted while step N computed,
 * plans and launches step N+1 itself, and then hands step N to the task thread (a mail,
 * {@link #completed}). There the task thread answers and stores what step N finished and admits
 * queued work (keyed-state reads) for step N+2, which it hands over ({@link #handover}) while step
 * N+1 computes; the engine thread waits for that hand-over only if the task thread is more than a
 * step behind. Work is admitted into the places that are free after the step in flight: those of
 * running requests that certainly end with it ({@code max_tokens} reached, a part's last chunk)
 * count as free, so such a place is not left empty for a step. So step N+1's plan is the one the
 * task thread would make after handling step N-1, on whichever thread it is made. When a step
 * leaves nothing to compute the engine thread stops, and the task thread launches the next step
 * when work comes.
 *
 * <p>Who touches what: a launched step's requests and caches, and the runner, only the engine
 * thread, until it hands the step back; keyed state, outputs and the queue only the task thread,
 * and only between whole outcomes, so a checkpoint at any time sees every unanswered item in
 * state. The launch, the hand-back (a mail) and the hand-over order each thread's writes before
 * the other's reads.
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
    private final Consumer<Done> whenDone;
    /** Admitted work as the task thread sees it: what runs in (or after) the step in flight, and what it admitted since. */
    private List<Running> running = new ArrayList<>();
    /** The step being computed, or computed and not yet handled by the task thread; null when the engine thread is idle. */
    private Flight flight;
    /** What the task thread admitted since the last hand-over: it joins the step after the one in flight. */
    private List<Running> admitted = new ArrayList<>();
    /** Admitted work, handed from the task thread to the engine thread: one list per computed step. */
    private final BlockingQueue<List<Running>> handover = new LinkedBlockingQueue<>();
    /** Handed over by {@link #stop}: the engine thread launches no more steps. */
    private static final List<Running> STOP = Collections.unmodifiableList(new ArrayList<>());
    private volatile boolean stopped;
    /** Steps computed (on the engine thread). */
    private final AtomicLong computedSteps = new AtomicLong();

    /** What the loop drives (more than five, so a record). */
    record Parts(StepRunner runner, EngineThread engine, RequestQueue queue, PromptIntake intake,
            DocumentIngestion ingestion, ContextStore store, Keys keys, Outputs out, InferenceMetrics metrics) {}

    /**
     * A computed step, handed back to the task thread: the runs that ended with it (finished or
     * failed; their caches detached), the prompts that sampled their first token in it, the step the
     * engine thread launched after it (null: none, the engine thread is idle) and the admitted work
     * after it; or what the runner threw.
     */
    record Done(Flight step, List<Ended> ended, List<PromptRun> firstTokens, Flight next, List<Running> running,
            Throwable error) {

        static Done failed(Flight step, Throwable error) {
            return new Done(step, List.of(), List.of(), null, List.of(), error);
        }
    }

    /** A run that left the loop: finished, or failed with {@code failure}. */
    record Ended(Running run, RuntimeException failure) {}

    /**
     * @param whenDone called on the engine thread when a step is computed; hands it to the task
     *                 thread, which then calls {@link #completed}
     */
    StepLoop(InferenceConfig config, String modelName, Parts parts, Consumer<Done> whenDone) {
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

    /** Steps the engine thread has computed, those not yet handed back included. */
    long computedSteps() {
        return computedSteps.get();
    }

    /** Whether a step is being computed, or was and is not handled yet. */
    boolean inFlight() {
        return flight != null;
    }

    /**
     * With the engine thread idle: admits what the planner allows and launches a step over the running work.
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
     * {@code done} was computed (and the step after it launched, if any): what finished is answered
     * or stored, and queued work is admitted and handed over for the step after the one in flight.
     * Nothing when {@code done} was handled already ({@link #drain}).
     */
    void completed(Done done) throws Exception {
        if (done.step() != flight) {
            return;
        }
        if (done.error() != null) {
            flight = null;
            handover.clear(); // what was admitted for the failed step's successor joins nothing
            ExceptionUtils.rethrow(done.error(), "the engine thread failed");
        }
        flight = done.next();
        running = new ArrayList<>(done.running());
        Flight f = done.step();
        metrics.step(f.prefill() + f.decode(), f.stepped().size(), f.prefill(), f.decode());
        long now = keys.now();
        for (PromptRun p : done.firstTokens()) {
            p.firstTokenAt(now);
        }
        for (Ended e : done.ended()) {
            if (e.failure() == null) {
                finish(e.run());
            } else {
                fail(e.run(), e.failure());
            }
        }
        admit();
        if (flight != null) {
            handover.add(admitted);
            admitted = new ArrayList<>();
        } else {
            launch();
        }
    }

    /** Runs steps, each awaited, until no work is pending (end of input); on the task thread. */
    void drain() throws Exception {
        while (true) {
            if (flight != null) {
                completed(awaited(flight));
            } else if (queue.pending() == 0) {
                return;
            } else if (!step()) {
                throw new IllegalStateException(queue.pending() + " items are pending but none can run");
            }
        }
    }

    private static Done awaited(Flight f) throws InterruptedException {
        try {
            return f.done().get();
        } catch (ExecutionException e) {
            throw new IllegalStateException(e.getCause()); // not completed exceptionally: a Done carries errors
        }
    }

    /** The engine thread launches no more steps (the operator closes); the one in flight finishes. */
    void stop() {
        stopped = true;
        handover.add(STOP);
    }

    /** With the engine thread idle: plans the next step over the running work and launches it; false when nothing runs. */
    private boolean launch() {
        Flight f = Flight.plan(planner, running);
        if (f == null) {
            return false;
        }
        admitted = new ArrayList<>(); // in the plan already
        handover.add(new ArrayList<>()); // the engine thread takes one list per computed step: none joins the next
        flight = f;
        return start(f);
    }

    /**
     * On the engine thread, when {@code f} is computed: its requests take their outcomes and sample,
     * those that ended leave (their caches detached before the runner computes another step), the
     * admitted work handed over joins, the next step is launched, and {@code f} is handed back.
     */
    private void computed(Flight f) {
        Done done;
        try {
            StepRunner.Outcome outcome = f.step().outcome();
            long nanos = f.step().nanos();
            metrics.stepTook(nanos);
            computedSteps.incrementAndGet();
            int total = f.prefill() + f.decode();
            List<Ended> ended = new ArrayList<>();
            List<PromptRun> firstTokens = new ArrayList<>();
            Set<Running> gone = Collections.newSetFromMap(new IdentityHashMap<>());
            for (int j = 0; j < f.stepped().size(); j++) {
                Running r = f.stepped().get(j);
                RuntimeException failure = outcome.failures()[j];
                if (failure == null) {
                    int n = f.step().chunks.get(j).tokens().length;
                    boolean sampledBefore = r.request.sampled() > 0;
                    r.request.computed(n, outcome.logits()[j], nanos * n / total);
                    if (!sampledBefore && r.request.sampled() > 0 && r instanceof PromptRun p) {
                        firstTokens.add(p);
                    }
                    if (!r.request.finished()) {
                        continue;
                    }
                }
                runner.detach(r.request.cache(), failure == null && r.writesBack());
                ended.add(new Ended(r, failure));
                gone.add(r);
            }
            List<Running> after = new ArrayList<>(f.running().size());
            for (Running r : f.running()) {
                if (!gone.contains(r)) {
                    after.add(r);
                }
            }
            List<Running> joining = handover.poll();
            if (joining == null) {
                long waitFrom = System.nanoTime();
                joining = handover.take();
                metrics.handoverWaited(System.nanoTime() - waitFrom);
            }
            after.addAll(joining);
            Flight next = joining == STOP || stopped ? null : Flight.plan(planner, after);
            if (next != null && !start(next)) {
                next = null;
            }
            done = new Done(f, ended, firstTokens, next, next != null ? next.running() : List.copyOf(after), null);
        } catch (Throwable t) { // the runner's Error, a failure of sampling or detaching, an interrupt: fails the job
            if (t instanceof InterruptedException) {
                Thread.currentThread().interrupt();
            }
            done = Done.failed(f, t);
        }
        f.done().complete(done);
        try {
            whenDone.accept(done);
        } catch (RuntimeException e) { // the mailbox closed: the operator is closing
            LOG.debug("a step finished after its operator closed", e);
        }
    }

    /** Hands {@code f} to the engine thread, which computes it and then {@link #computed}; false when the operator is closing. */
    private boolean start(Flight f) {
        try {
            engine.launch(f.step(), step -> computed(f));
            return true;
        } catch (RejectedExecutionException closing) {
            return false;
        }
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
                    admitted.add(r);
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
