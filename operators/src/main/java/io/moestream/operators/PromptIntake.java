package io.moestream.operators;

import io.moestream.runtime.chat.ChatFormat;
import io.moestream.runtime.constrain.Grammar;
import io.moestream.runtime.constrain.UnsupportedSchemaException;
import io.moestream.runtime.model.GenerationRequest;
import io.moestream.runtime.model.KvCache;
import io.moestream.runtime.model.Model;
import io.moestream.runtime.sched.Request;
import io.moestream.runtime.tokenizer.Tokenizer;
import io.moestream.schemas.ErrorCode;
import io.moestream.schemas.InferenceError;
import io.moestream.schemas.Prompt;
import io.moestream.schemas.PromptMode;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.runtime.state.VoidNamespace;
import org.apache.flink.streaming.api.operators.InternalTimerService;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Prompts from arrival to admission: duplicates ({@link #SEEN_STATE} within
 * {@code duplicateWindowMillis}), DOCUMENT prompts waiting for their document ({@link DocumentWaits}),
 * the queue ({@link #PENDING_STATE} and the {@link RequestQueue}), and at admission the checks that
 * need the context (kind, room in the context window, tenant cap) and the {@link Request} to run.
 * Acts on the current key.
 */
final class PromptIntake {

    private static final Logger LOG = LoggerFactory.getLogger(PromptIntake.class);

    /** Prompts queued or in flight, until their answer is emitted. */
    static final String PENDING_STATE = "pending-prompts";
    /** Request ids seen lately (request id → processing time first seen). */
    static final String SEEN_STATE = "seen-requests";
    /** Keyed processing-time timers expiring {@link #SEEN_STATE} entries. */
    static final String DUPLICATE_TIMERS = "duplicate-expiry";

    private final InferenceConfig config;
    private final Model model;
    private final Tokenizer tokenizer;
    private final ListState<PendingPrompt> pending;
    private final MapState<String, Long> seen;
    private final InternalTimerService<VoidNamespace> duplicateTimers;
    private final DocumentWaits waits;
    private final RequestQueue queue;
    private final ContextStore store;
    private final Outputs out;
    private final ChatPrompts chatPrompts;

    /** The state and services prompts need (more than five, so a record). */
    record Parts(ListState<PendingPrompt> pending, MapState<String, Long> seen,
            InternalTimerService<VoidNamespace> duplicateTimers, DocumentWaits waits, RequestQueue queue,
            ContextStore store, Outputs out) {}

    PromptIntake(InferenceConfig config, Model model, Parts parts) {
        this.config = config;
        this.model = model;
        this.tokenizer = model.tokenizer();
        this.pending = parts.pending();
        this.seen = parts.seen();
        this.duplicateTimers = parts.duplicateTimers();
        this.waits = parts.waits();
        this.queue = parts.queue();
        this.store = parts.store();
        this.out = parts.out();
        this.chatPrompts = new ChatPrompts(config, model);
    }

    /** A prompt of the current key arrived: answered as a duplicate, or waits for its document, or is queued. */
    void receive(String key, Prompt prompt, long now) throws Exception {
        ProgressStats.PROMPTS.increment();
        if (isDuplicate(prompt, now)) {
            return;
        }
        PendingPrompt p = new PendingPrompt(prompt, now);
        if (prompt.getMode() == PromptMode.DOCUMENT && !waits.ready(p, store.meta(), now)) {
            return;
        }
        enqueue(key, p);
    }

    /** A prompt of the current key joins the queue and {@link #PENDING_STATE}. */
    void enqueue(String key, PendingPrompt p) throws Exception {
        pending.add(p);
        queue.add(RequestQueue.Queued.of(key, p));
    }

    /** The queued prompts of the current key, from state (restore). */
    void restore(String key, List<RequestQueue.Queued> into) throws Exception {
        for (PendingPrompt p : DocumentWaits.orEmpty(pending.get())) {
            into.add(RequestQueue.Queued.of(key, p));
        }
    }

    private boolean isDuplicate(Prompt prompt, long now) throws Exception {
        long window = config.duplicateWindowMillis();
        if (window == 0) {
            return false;
        }
        Long first = seen.get(prompt.getRequestId());
        if (first != null && now - first < window) {
            out.error(Outcomes.duplicate(prompt, now - first, window, now));
            return true;
        }
        seen.put(prompt.getRequestId(), now);
        duplicateTimers.registerProcessingTimeTimer(VoidNamespace.INSTANCE, now + window);
        return false;
    }

    /** A duplicate-window timer fired for the current key: forgets the ids seen longer ago than the window. */
    void expireSeen(long now) throws Exception {
        Iterator<Map.Entry<String, Long>> it = seen.iterator();
        while (it.hasNext()) {
            if (it.next().getValue() + config.duplicateWindowMillis() <= now) {
                it.remove();
            }
        }
    }

    /**
     * Prepares an admitted prompt (its key selected) to run: its cache and prompt tokens, or answers it
     * with an error, or moves a DOCUMENT prompt whose document is being replaced back to waiting (null).
     */
    PromptRun prepare(RequestQueue.Queued q, long now) throws Exception {
        PendingPrompt p = q.prompt();
        Prompt prompt = p.prompt();
        try {
            Grammar grammar = PromptSampling.grammar(prompt);
            KvCache cache = null;
            ContextMeta meta = null;
            int[] ids;
            boolean chat = !prompt.getMessages().isEmpty();
            switch (prompt.getMode()) {
                case DOCUMENT -> {
                    ContextMeta doc = store.meta();
                    if (!waits.ready(p, doc, now)) {
                        remove(q);
                        return null;
                    }
                    cache = store.load(doc).copy(); // a copy: the prompt's tokens never reach the document's cache
                    ids = chat ? tokenizer.encode(chatPrompts.render(prompt), false, true)
                            : tokenizer.encode(prompt.getText(), false);
                }
                case CONVERSATION -> {
                    meta = store.meta();
                    if (meta != null && meta.kind() != ContextMeta.Kind.CONVERSATION) {
                        return reject(q, Outcomes.conversationOnDocument(prompt, now));
                    }
                    if (meta != null) { // the stored cache itself: the turn stores only its dirty blocks
                        cache = store.load(meta);
                    }
                    if (chat) {
                        int[] whole = chatPrompts.encode(prompt);
                        if (cache != null) {
                            cache = reuse(cache, whole);
                        }
                        ids = Arrays.copyOfRange(whole, cache == null ? 0 : cache.length(), whole.length);
                    } else {
                        ids = cache == null ? tokenizer.encodePrompt(prompt.getText()) : tokenizer.encode(prompt.getText(), false);
                    }
                }
                default -> ids = chat ? chatPrompts.encode(prompt) : tokenizer.encodePrompt(prompt.getText());
            }
            if (cache == null) {
                cache = store.newCache();
            }
            int cached = cache.length();
            if (ids.length == 0) {
                return reject(q, Outcomes.noTokens(prompt, now));
            }
            int room = model.contextLength() - cached - ids.length;
            if (room < 1) {
                return reject(q, Outcomes.contextOverflow(prompt, ids.length, cached, model.contextLength(), now));
            }
            int maxTokens = Math.min(Math.min(prompt.getMaxTokens(), config.maxTokensCap()), room);
            if (maxTokens < 1) {
                return reject(q, Outcomes.maxTokens(prompt, config.maxTokensCap(), now));
            }
            boolean conversation = prompt.getMode() == PromptMode.CONVERSATION;
            if (conversation && meta == null && !store.admitNewContext(prompt.getTenant(), now)) {
                return reject(q, Outcomes.contextLimit(prompt, store.tenantCap(), now));
            }
            Request request = Request.generate(prompt.getTenant(),
                    new GenerationRequest(cache, ids, PromptSampling.params(prompt, maxTokens), conversation), tokenizer);
            if (grammar != null) {
                request.constrain(grammar.start(tokenizer));
            }
            return new PromptRun(q, request, maxTokens, meta, now);
        } catch (UnsupportedSchemaException e) {
            return reject(q, Outcomes.unsupportedFormat(prompt, e, now));
        } catch (ChatPrompts.Refused e) {
            return reject(q, Outcomes.prompt(prompt, ErrorCode.INVALID_PARAMS, e.getMessage(), now));
        } catch (RuntimeException e) {
            LOG.warn("cannot prepare request {}", prompt.getRequestId(), e);
            return reject(q, Outcomes.cannotPrepare(prompt, e, now));
        }
    }

    /** The answer to {@code prompt}: for chat messages split at the template's think markers, else all text. */
    ChatFormat.Answer answer(Prompt prompt, String text) {
        return prompt.getMessages().isEmpty() ? new ChatFormat.Answer(text, null) : chatPrompts.split(prompt, text);
    }

    /**
     * The conversation's cache made a prefix of {@code whole}, its new rendering: kept up to the longest
     * common token prefix (so a template that rewrites earlier turns still gives exactly the rendering
     * from scratch), cut back to a block boundary when the cache goes beyond that prefix (or to nothing
     * when streaming heads or sliding layers dropped what it needs), and always leaving at least one
     * token to compute.
     */
    private KvCache reuse(KvCache cache, int[] whole) {
        int[] cached = cache.tokens();
        int common = 0;
        int n = Math.min(cached.length, whole.length - 1);
        while (common < n && cached[common] == whole[common]) {
            common++;
        }
        if (common == cached.length) {
            return cache;
        }
        if (!cache.truncatable(common)) {
            return store.newCache();
        }
        cache.truncate(common);
        return cache;
    }

    /** Answers a queued or running prompt (its key selected) with an error; it leaves the pending work. */
    PromptRun reject(RequestQueue.Queued q, InferenceError.Builder error) throws Exception {
        remove(q);
        out.error(error);
        return null;
    }

    /** The prompt (its key selected) leaves {@link #PENDING_STATE} and the pending work. */
    void remove(RequestQueue.Queued q) throws Exception {
        DocumentWaits.removeFirst(pending, q.prompt());
        queue.left(q);
    }
}
