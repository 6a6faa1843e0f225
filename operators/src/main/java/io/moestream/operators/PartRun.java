package io.moestream.operators;

import io.moestream.runtime.sched.Request;
import io.moestream.schemas.Document;

/** A document part being prefilled in steps, and what storing it needs. */
final class PartRun extends Running {

    /** The document's stored metadata before this part (null for part 0: a new or replaced document). */
    final ContextMeta previous;
    /** Bytes the stored document took before this part. */
    final long previousBytes;
    /** Whether part 0 created a context (counted against the tenant's cap). */
    final boolean newContext;
    /** Whether the part's attention is observed to classify the heads (head pruning). */
    final boolean classify;

    PartRun(RequestQueue.Queued queued, Request request, ContextMeta previous, long previousBytes, boolean newContext,
            boolean classify) {
        super(queued, request);
        this.previous = previous;
        this.previousBytes = previousBytes;
        this.newContext = newContext;
        this.classify = classify;
    }

    Document part() {
        return queued.part().part();
    }

    @Override
    boolean writesBack() {
        return true;
    }
}
