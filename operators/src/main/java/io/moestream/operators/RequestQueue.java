package io.moestream.operators;

import io.moestream.schemas.PromptMode;
import java.util.ArrayDeque;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * The tenant-fair queue of work not yet admitted to a step: prompts and document parts, per tenant
 * (tenants in first-arrival order), oldest first. Work on one key is ordered: a document part or a
 * conversation turn is <em>exclusive</em>, so nothing later of its key starts while it is queued
 * ahead or running ({@link #busy}). The {@code StepPlanner} picks tenants; this queue gives each
 * tenant's oldest item that can start. Also counts the pending work (queued + running) that
 * back-pressure bounds. In memory only: keyed state holds the same items until they are answered.
 */
final class RequestQueue {

    /** A queued item: a prompt or a document part, and the key its state lives under. */
    record Queued(String key, PendingPrompt prompt, PendingPart part) {

        static Queued of(String key, PendingPrompt prompt) {
            return new Queued(key, prompt, null);
        }

        static Queued of(String key, PendingPart part) {
            return new Queued(key, null, part);
        }

        String tenant() {
            return prompt != null ? prompt.prompt().getTenant() : part.part().getTenant();
        }

        long arrivalMillis() {
            return prompt != null ? prompt.arrivalMillis() : part.arrivalMillis();
        }

        /** Whether later work of its key waits for it (a document part, a conversation turn). */
        boolean exclusive() {
            return part != null || prompt.prompt().getMode() == PromptMode.CONVERSATION;
        }
    }

    private final Map<String, ArrayDeque<Queued>> byTenant = new LinkedHashMap<>();
    private final Set<String> busy = new HashSet<>();
    private int queued;
    private int pending;
    private int maxPendingObserved;
    private int pendingPrompts; // mirrored in ProgressStats.PENDING

    void add(Queued q) {
        byTenant.computeIfAbsent(q.tenant(), t -> new ArrayDeque<>()).add(q);
        queued++;
        pending++;
        maxPendingObserved = Math.max(maxPendingObserved, pending);
        if (q.prompt() != null) {
            pendingPrompts++;
            ProgressStats.PENDING.increment();
        }
    }

    /** An item left the pending work (answered, rejected, or back to waiting for its document). */
    void left(Queued q) {
        pending--;
        if (q.prompt() != null) {
            pendingPrompts--;
            ProgressStats.PENDING.decrement();
        }
    }

    /** Per tenant, how many queued items could start now (at most {@code limit} counted each). */
    Map<String, Integer> admissible(int limit) {
        Map<String, Integer> counts = new LinkedHashMap<>();
        for (Map.Entry<String, ArrayDeque<Queued>> tenant : byTenant.entrySet()) {
            Set<String> blocked = new HashSet<>(busy);
            int n = 0;
            for (Iterator<Queued> it = tenant.getValue().iterator(); it.hasNext() && n < limit; ) {
                if (admissible(it.next(), blocked)) {
                    n++;
                }
            }
            counts.put(tenant.getKey(), n);
        }
        return counts;
    }

    private static boolean admissible(Queued q, Set<String> blocked) {
        if (blocked.contains(q.key())) {
            return false;
        }
        if (q.exclusive()) {
            blocked.add(q.key()); // the work after it waits for it
        }
        return true;
    }

    /** Takes the tenant's oldest item that can start now, or null; an exclusive one makes its key busy. */
    Queued take(String tenant) {
        ArrayDeque<Queued> items = byTenant.get(tenant);
        if (items == null) {
            return null;
        }
        Set<String> blocked = new HashSet<>(busy);
        for (Iterator<Queued> it = items.iterator(); it.hasNext(); ) {
            Queued q = it.next();
            if (admissible(q, blocked)) {
                it.remove();
                if (items.isEmpty()) {
                    byTenant.remove(tenant);
                }
                queued--;
                if (q.exclusive()) {
                    busy.add(q.key());
                }
                return q;
            }
        }
        return null;
    }

    /** The exclusive item of {@code key} is done: later work of the key may start. */
    void release(String key) {
        busy.remove(key);
    }

    int queued() {
        return queued;
    }

    /** Queued plus running: what back-pressure bounds. */
    int pending() {
        return pending;
    }

    int maxPendingObserved() {
        return maxPendingObserved;
    }

    /** Forgets everything (the operator closes). */
    void clear() {
        ProgressStats.PENDING.add(-pendingPrompts);
        pendingPrompts = 0;
        byTenant.clear();
        busy.clear();
        queued = 0;
        pending = 0;
    }
}
