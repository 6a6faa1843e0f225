package io.moestream.operators;

import io.moestream.runtime.model.KvCache;
import io.moestream.runtime.model.Model;
import io.moestream.runtime.sched.Request;
import io.moestream.runtime.tokenizer.Tokenizer;
import io.moestream.schemas.Document;
import io.moestream.schemas.InferenceError;
import java.util.List;
import org.apache.flink.api.common.state.ListState;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Document parts through the step loop. A part is queued on arrival ({@link #PENDING_STATE} and the
 * {@link RequestQueue}, exclusive for its key, so parts run one at a time and in order); when the
 * planner admits it, it is checked against the stored document (order, kind, size, tenant cap) and
 * becomes a prefill-only {@link Request} whose chunks run inside the scheduled steps, under the token
 * budget and tenant share like prompts. When its last chunk is computed the part is stored (only the
 * changed KV blocks), and a last part completes the document: {@code ContextReady} is emitted and its
 * waiting prompts are released. A part leaves {@link #PENDING_STATE} only when stored or rejected, so
 * a restore prefills an interrupted part again from the state after the part before it.
 */
final class DocumentIngestion {

    private static final Logger LOG = LoggerFactory.getLogger(DocumentIngestion.class);

    /** Document parts queued or being prefilled, in arrival order. */
    static final String PENDING_STATE = "pending-parts";

    private final InferenceConfig config;
    private final Model model;
    private final Tokenizer tokenizer;
    private final ListState<PendingPart> pending;
    private final RequestQueue queue;
    private final ContextStore store;
    private final DocumentWaits waits;
    private final PromptIntake intake;
    private final Outputs out;
    private final String modelName;

    /** The state and services document parts need (more than five, so a record). */
    record Parts(ListState<PendingPart> pending, RequestQueue queue, ContextStore store, DocumentWaits waits,
            PromptIntake intake, Outputs out) {}

    DocumentIngestion(InferenceConfig config, Model model, String modelName, Parts parts) {
        this.config = config;
        this.model = model;
        this.tokenizer = model.tokenizer();
        this.modelName = modelName;
        this.pending = parts.pending();
        this.queue = parts.queue();
        this.store = parts.store();
        this.waits = parts.waits();
        this.intake = parts.intake();
        this.out = parts.out();
    }

    /** A part of the current key arrived: it is queued. */
    void receive(String key, Document part, long now) throws Exception {
        PendingPart p = new PendingPart(part, now);
        pending.add(p);
        queue.add(RequestQueue.Queued.of(key, p));
    }

    /** The queued parts of the current key, from state (restore). */
    void restore(String key, List<RequestQueue.Queued> into) throws Exception {
        for (PendingPart p : DocumentWaits.orEmpty(pending.get())) {
            into.add(RequestQueue.Queued.of(key, p));
        }
    }

    /** Prepares an admitted part (its key selected) to be prefilled in steps, or rejects it (null). */
    PartRun prepare(RequestQueue.Queued q, long now) throws Exception {
        Document part = q.part().part();
        ContextMeta meta = store.meta();
        if (meta != null && meta.kind() == ContextMeta.Kind.CONVERSATION) {
            return reject(q, Outcomes.partOnConversation(part, now));
        }
        InferenceError.Builder order = Outcomes.outOfOrder(part, meta, now);
        if (order != null) {
            return reject(q, order);
        }
        boolean newContext = part.getPart() == 0 && meta == null;
        if (newContext && !store.admitNewContext(part.getTenant(), now)) {
            return reject(q, Outcomes.contextLimit(part, store.tenantCap(), now));
        }
        long previousBytes = store.bytes(meta);
        KvCache cache;
        int[] ids;
        try {
            cache = part.getPart() == 0 ? store.newCache() : store.load(meta);
            ids = part.getPart() == 0 ? tokenizer.encodePrompt(part.getText()) : tokenizer.encode(part.getText(), false);
        } catch (RuntimeException e) {
            gone(part, newContext);
            LOG.warn("cannot read the stored document", e);
            return reject(q, Outcomes.unreadable(part, e, now));
        }
        int limit = config.maxDocumentTokens() == 0 ? model.contextLength()
                : Math.min(config.maxDocumentTokens(), model.contextLength());
        if (cache.length() + ids.length > limit) {
            String message = Outcomes.tooLargeMessage(part, cache.length() + ids.length, limit, limit < model.contextLength());
            store.clear(meta, previousBytes);
            if (newContext) {
                store.contextGone(part.getTenant());
            }
            reject(q, Outcomes.tooLarge(part, message, now));
            waits.fail(Outcomes.documentRejected(part.getDocumentId(), message), now);
            return null;
        }
        KvStateConfig kv = config.kvState();
        boolean classify = kv.headPruning() && !cache.headPolicy().anyStreaming();
        if (classify) {
            cache.startHeadClassification(kv.pruningSink(), kv.pruningWindow(), model.config());
        }
        ContextMeta previous = part.getPart() == 0 ? null : meta;
        if (ids.length == 0) { // nothing to compute (a part of whitespace): stored at once
            complete(q, cache, previous, previousBytes, classify, 0, now);
            return null;
        }
        return new PartRun(q, Request.prefill(part.getTenant(), cache, ids), previous, previousBytes, newContext, classify);
    }

    /**
     * The part (its key selected) is prefilled: its cache is stored, and a last part completes the
     * document ({@code ContextReady}, its waiting prompts are queued).
     */
    void finish(PartRun run, long now) throws Exception {
        complete(run.queued, run.request.cache(), run.previous, run.previousBytes, run.classify,
                run.request.prefillNanos(), now);
    }

    private void complete(RequestQueue.Queued q, KvCache cache, ContextMeta previous, long previousBytes,
            boolean classify, long nanos, long now) throws Exception {
        Document part = q.part().part();
        KvStateConfig kv = config.kvState();
        if (classify) {
            // until a policy with streaming heads is set, each part's prefill is observed and decides
            cache.applyHeadClassification(kv.pruningFraction(), kv.pruningMaxOutsideMass());
        }
        ContextMeta next = previous == null
                ? ContextMeta.documentStarted(part.getTenant(), part.getDocumentId(), cache.length(), nanos,
                        part.getLast(), now)
                : previous.withPart(cache.length(), nanos, part.getLast(), now);
        ContextMeta stored = store.store(cache, next, previous, previousBytes);
        remove(q);
        queue.release(q.key());
        if (stored.complete()) {
            out.contextReady(store.ready(stored, modelName));
            waits.release(p -> intake.enqueue(q.key(), p));
        }
    }

    /** The part's prefill failed (its key selected): it is answered with an error and can be sent again. */
    void fail(PartRun run, RuntimeException e, long now) throws Exception {
        LOG.warn("prefill of document part failed", e);
        gone(run.part(), run.newContext);
        queue.release(run.key());
        reject(run.queued, Outcomes.prefillFailed(run.part(), e, now));
    }

    private void gone(Document part, boolean newContext) {
        if (newContext) {
            store.contextGone(part.getTenant());
        }
    }

    private PartRun reject(RequestQueue.Queued q, InferenceError.Builder error) throws Exception {
        remove(q);
        queue.release(q.key());
        out.error(error);
        return null;
    }

    private void remove(RequestQueue.Queued q) throws Exception {
        DocumentWaits.removeFirst(pending, q.part());
        queue.left(q);
    }
}
