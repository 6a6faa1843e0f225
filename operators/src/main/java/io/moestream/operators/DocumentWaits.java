package io.moestream.operators;

import io.moestream.schemas.Prompt;
import java.util.ArrayList;
import java.util.List;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.runtime.state.VoidNamespace;
import org.apache.flink.streaming.api.operators.InternalTimerService;

/**
 * DOCUMENT prompts waiting for their document's last part ({@link #WAITING_STATE}, keyed, with a
 * checkpointed processing-time timer per prompt at arrival + {@code documentWaitMillis}).
 * Documents and prompts come from different topics, so a question may overtake its document's first
 * part: an unknown document is waited for like an incomplete one. Acts on the current key.
 */
final class DocumentWaits {

    /** DOCUMENT prompts waiting for their document's last part. */
    static final String WAITING_STATE = "waiting-prompts";
    /** Keyed processing-time timers ending the wait of {@link #WAITING_STATE}. */
    static final String TIMERS = "document-wait";

    /** Takes a released prompt into the queue. */
    interface Release {
        void accept(PendingPrompt p) throws Exception;
    }

    private final ListState<PendingPrompt> waiting;
    private final InternalTimerService<VoidNamespace> timers;
    private final long waitMillis;
    private final Outputs out;

    DocumentWaits(ListState<PendingPrompt> waiting, InternalTimerService<VoidNamespace> timers, long waitMillis,
            Outputs out) {
        this.waiting = waiting;
        this.timers = timers;
        this.waitMillis = waitMillis;
        this.out = out;
    }

    /**
     * Whether the current key's document can answer the prompt now; if not, the prompt is answered with
     * an error (the context is a conversation) or waits for the document's last part.
     */
    boolean ready(PendingPrompt pending, ContextMeta meta, long now) throws Exception {
        if (meta != null && meta.kind() != ContextMeta.Kind.DOCUMENT) {
            out.error(Outcomes.documentIsConversation(pending.prompt(), now));
            return false;
        }
        if (meta == null || !meta.complete()) {
            waiting.add(pending);
            timers.registerProcessingTimeTimer(VoidNamespace.INSTANCE, deadline(pending));
            return false;
        }
        return true;
    }

    /** The current key's document is complete: its waiting prompts go to {@code enqueue}. */
    void release(Release enqueue) throws Exception {
        for (PendingPrompt p : orEmpty(waiting.get())) {
            timers.deleteProcessingTimeTimer(VoidNamespace.INSTANCE, deadline(p));
            enqueue.accept(p);
        }
        waiting.clear();
    }

    /** The current key's document will not complete: its waiting prompts are answered with an error. */
    void fail(String message, long now) throws Exception {
        for (PendingPrompt p : orEmpty(waiting.get())) {
            timers.deleteProcessingTimeTimer(VoidNamespace.INSTANCE, deadline(p));
            out.error(Outcomes.documentIncomplete(p.prompt(), message, now));
        }
        waiting.clear();
    }

    /** A wait deadline passed for the current key, whose document has {@code meta} (null: none). */
    void expire(long timestamp, ContextMeta meta) throws Exception {
        List<PendingPrompt> still = new ArrayList<>();
        for (PendingPrompt p : orEmpty(waiting.get())) {
            if (deadline(p) > timestamp) {
                still.add(p);
                continue;
            }
            Prompt prompt = p.prompt();
            out.error(meta == null
                    ? Outcomes.unknownDocument(prompt, waitMillis, timestamp)
                    : Outcomes.documentTimedOut(prompt, meta.nextPart(), waitMillis, timestamp));
        }
        if (still.isEmpty()) {
            waiting.clear();
        } else {
            waiting.update(still);
        }
    }

    private long deadline(PendingPrompt p) {
        return p.arrivalMillis() + waitMillis;
    }

    static <T> Iterable<T> orEmpty(Iterable<T> values) {
        return values == null ? List.of() : values;
    }

    /** Removes the first element equal to {@code item} from the current key's list state. */
    static <T> void removeFirst(ListState<T> state, T item) throws Exception {
        List<T> rest = new ArrayList<>();
        boolean removed = false;
        for (T t : orEmpty(state.get())) {
            if (!removed && t.equals(item)) {
                removed = true;
            } else {
                rest.add(t);
            }
        }
        if (rest.isEmpty()) {
            state.clear();
        } else {
            state.update(rest);
        }
    }
}
