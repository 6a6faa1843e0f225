package io.moestream.operators;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The per-tenant context cap ({@code moestream.tenant.max-contexts}): how many contexts each tenant
 * holds on this parallel instance. Counted from {@link ContextStore#META_STATE} keys in
 * {@code open()}, +1 when a new document or conversation is admitted, −1 when one goes; a tenant at
 * its cap is recounted (expired contexts leave the count) at most every {@link #RECOUNT_MILLIS}.
 */
final class TenantContexts {

    /** A tenant at its cap is recounted at most this often. */
    static final long RECOUNT_MILLIS = 60_000;

    interface Recount {
        /** The live contexts of {@code tenant} (null: of every tenant), per tenant. */
        Map<String, Integer> count(String tenant) throws Exception;
    }

    private final int cap;
    private final Recount recount;
    private final Map<String, Integer> byTenant = new HashMap<>();
    private final Map<String, Long> recountedAt = new HashMap<>();

    TenantContexts(int cap, Recount recount) {
        this.cap = cap;
        this.recount = recount;
    }

    boolean capped() {
        return cap > 0;
    }

    int cap() {
        return cap;
    }

    /** Counts the contexts of a restored instance: the tenants of the given context keys. */
    void restore(List<String> tenants) {
        byTenant.clear();
        if (capped()) {
            tenants.forEach(t -> byTenant.merge(t, 1, Integer::sum));
        }
    }

    /** Whether {@code tenant} may start one more context; if so it is counted. */
    boolean admit(String tenant, long now) throws Exception {
        if (!capped()) {
            return true;
        }
        if (byTenant.getOrDefault(tenant, 0) >= cap) {
            Long last = recountedAt.get(tenant);
            if (last == null || now - last >= RECOUNT_MILLIS) {
                recountedAt.put(tenant, now);
                byTenant.remove(tenant);
                byTenant.putAll(recount.count(tenant));
            }
            if (byTenant.getOrDefault(tenant, 0) >= cap) {
                return false;
            }
        }
        byTenant.merge(tenant, 1, Integer::sum);
        return true;
    }

    /** A context of {@code tenant} went (dropped, or its creation failed). */
    void gone(String tenant) {
        if (capped()) {
            byTenant.computeIfPresent(tenant, (t, n) -> n <= 1 ? null : n - 1);
        }
    }
}
