package io.moestream.operators;

import io.moestream.runtime.model.StepPlan;
import io.moestream.runtime.sched.Request;
import io.moestream.runtime.sched.StepPlanner;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The step loop: one step is one mailbox action. It admits queued work as the {@link StepPlanner}
 * allows (prompts through {@link PromptIntake}, document parts through {@link DocumentIngestion}),
 * computes one forward step over everything running ({@link StepRunner}: decode tokens and prefill
 * chunks of prompts and document parts, within the token budget and tenant share), lets each
 * {@code Request} sample, and answers whatever finished in the same step: a Generation emitted (a
 * conversation's cache stored), a document part stored. Nothing else computes, so no mailbox action
 * lasts longer than one step.
 */
final class StepLoop {

    private static final Logger LOG = LoggerFactory.getLogger(StepLoop.class);

    private final StepPlanner planner;
    private final StepRunner runner;
    private final RequestQueue queue;
    private final PromptIntake intake;
    private final DocumentIngestion ingestion;
    private final ContextStore store;
    private final Keys keys;
    private final Outputs out;
    private final InferenceMetrics metrics;
    private final String modelName;
    /** Admitted work, in admission order. */
    private final List<Running> running = new ArrayList<>();

    /** What the loop drives (more than five, so a record). */
    record Parts(StepRunner runner, RequestQueue queue, PromptIntake intake, DocumentIngestion ingestion,
            ContextStore store, Keys keys, Outputs out, InferenceMetrics metrics) {}

    StepLoop(InferenceConfig config, String modelName, Parts parts) {
        this.planner = new StepPlanner(config.tokenBudget(), config.attentionBudget(), config.maxSequences(), config.tenantShare());
        this.modelName = modelName;
        this.runner = parts.runner();
        this.queue = parts.queue();
        this.intake = parts.intake();
        this.ingestion = parts.ingestion();
        this.store = parts.store();
        this.keys = parts.keys();
        this.out = parts.out();
        this.metrics = parts.metrics();
    }

    int running() {
        return running.size();
    }

    /**
     * One step: admit what the planner allows, compute one forward step over the running work, sample,
     * and answer or store everything that finished.
     *
     * @return whether anything happened (work admitted, answered or computed)
     */
    boolean step() throws Exception {
        boolean progress = admit();
        if (running.isEmpty()) {
            return progress;
        }
        int[] tokens = planner.allocate(requests());
        List<Running> stepped = new ArrayList<>();
        List<StepRunner.Chunk> chunks = new ArrayList<>();
        int prefill = 0;
        int decode = 0;
        for (int i = 0; i < tokens.length; i++) {
            if (tokens[i] == 0) {
                continue;
            }
            Running r = running.get(i);
            StepPlan.Sequence s = r.request.chunk(tokens[i]);
            stepped.add(r);
            chunks.add(new StepRunner.Chunk(s.cache(), s.tokens(), s.logits()));
            if (r.request.decoding()) {
                decode += tokens[i];
            } else {
                prefill += tokens[i];
            }
        }
        if (chunks.isEmpty()) {
            return progress; // every prefill waits for a step with room for more than one token
        }
        long started = System.nanoTime();
        StepRunner.Outcome outcome = runner.step(chunks);
        long nanos = System.nanoTime() - started;
        long now = keys.now();
        int total = prefill + decode;
        List<Running> done = new ArrayList<>();
        for (int j = 0; j < chunks.size(); j++) {
            Running r = stepped.get(j);
            RuntimeException failure = outcome.failures()[j];
            if (failure != null) {
                fail(r, failure, now);
                done.add(r);
                continue;
            }
            int n = chunks.get(j).tokens().length;
            r.request.computed(n, outcome.logits()[j], nanos * n / total);
            if (r instanceof PromptRun p) {
                p.sampledAt(now);
            }
            if (r.request.finished()) {
                finish(r, now);
                done.add(r);
            }
        }
        running.removeAll(done);
        metrics.step(total, chunks.size(), prefill, decode);
        return true;
    }

    /** The running work as the planner sees it: its requests, in the same order. */
    private List<Request> requests() {
        List<Request> requests = new ArrayList<>(running.size());
        for (Running r : running) {
            requests.add(r.request);
        }
        return requests;
    }

    /** Admits queued work as the planner says; answers what cannot run with an error. */
    private boolean admit() throws Exception {
        boolean progress = false;
        int limit = planner.maxSequences();
        while (queue.queued() > 0 && running.size() < limit) {
            List<String> tenants = planner.admissions(requests(), queue.admissible(limit - running.size()));
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

    /** Answers a finished prompt (a conversation's cache stored in the same step) or stores a prefilled part. */
    private void finish(Running r, long now) throws Exception {
        runner.detach(r.request.cache(), r.writesBack());
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
            store.store(p.request.cache(), next, p.meta, p.baseBytes);
            queue.release(p.key());
        }
        intake.remove(p.queued);
        out.generation(p.toGeneration(modelName, intake.answer(p.prompt(), p.request.result().text())));
        ProgressStats.IN_FLIGHT.decrement();
        long arrival = p.pending().arrivalMillis();
        metrics.generation(p.request.cachedTokens(), Math.max(0, p.firstTokenMillis() - arrival),
                Math.max(0, now - arrival));
    }

    private void fail(Running r, RuntimeException failure, long now) throws Exception {
        runner.detach(r.request.cache(), false);
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

    /** Forgets the running work (the operator closes). */
    void clear() {
        ProgressStats.IN_FLIGHT.add(-running.stream().filter(r -> r instanceof PromptRun).count());
        running.clear();
    }
}
