package io.moestream.operators;

import io.moestream.runtime.sched.Request;

/**
 * Work admitted to the step loop: a queued item and its {@link Request} (the runtime's request
 * lifecycle: chunks, sampling, finish rules). In memory only; the item stays in keyed state until
 * it is answered, so a restore runs it again from the start.
 */
abstract sealed class Running permits PromptRun, PartRun {

    final RequestQueue.Queued queued;
    final Request request;

    Running(RequestQueue.Queued queued, Request request) {
        this.queued = queued;
        this.request = request;
    }

    String key() {
        return queued.key();
    }

    String tenant() {
        return queued.tenant();
    }

    /** Whether this run appends to a context that is stored when it ends (a document part, a conversation turn). */
    abstract boolean writesBack();
}
