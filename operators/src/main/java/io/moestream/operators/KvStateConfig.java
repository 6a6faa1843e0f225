package io.moestream.operators;

import io.moestream.runtime.kv.KvCodec;
import java.io.Serializable;
import java.util.Objects;

/**
 * How the {@link InferenceOperator} keeps contexts (documents, conversations) in keyed state: the
 * KV-cache codec and block size, optional head pruning of documents, state TTL and the per-tenant cap.
 *
 * @param codec                 {@link KvCodec#parse} name of the codec full blocks are compressed with: {@code f32},
 *                              {@code f16}, {@code int8} (default), {@code int4}, optionally {@code /group}
 * @param blockTokens           positions per KV block (one map-state entry), default 32
 * @param headPruning           classify heads while a document is prefilled and let streaming heads keep only
 *                              sink + window (off by default)
 * @param pruningFraction       at most this fraction of the KV heads become streaming
 * @param pruningMaxOutsideMass only heads whose attention mass outside sink + window is at most this may stream
 * @param pruningSink           sink positions S every head keeps
 * @param pruningWindow         window W of a streaming head
 * @param ttlMillis             a context not read or written for this long expires (0 = never)
 * @param tenantMaxContexts     contexts one tenant may hold per parallel instance of the operator (0 = no cap)
 */
public record KvStateConfig(
        String codec,
        int blockTokens,
        boolean headPruning,
        double pruningFraction,
        double pruningMaxOutsideMass,
        int pruningSink,
        int pruningWindow,
        long ttlMillis,
        int tenantMaxContexts) implements Serializable {

    public static final String DEFAULT_CODEC = "int8";
    public static final int DEFAULT_BLOCK_TOKENS = 32;
    public static final double DEFAULT_PRUNING_FRACTION = 0.5;
    public static final double DEFAULT_PRUNING_MAX_OUTSIDE_MASS = 0.05;
    public static final int DEFAULT_PRUNING_SINK = 4;
    public static final int DEFAULT_PRUNING_WINDOW = 256;
    public static final long DEFAULT_TTL_MILLIS = 7L * 24 * 3600 * 1000;
    public static final int DEFAULT_TENANT_MAX_CONTEXTS = 10_000;

    public KvStateConfig {
        Objects.requireNonNull(codec, "codec");
        KvCodec c = KvCodec.parse(codec); // fails naming the accepted names
        if (blockTokens < 1 || blockTokens > 0xFFFF) {
            throw new IllegalArgumentException("kv block size must be in 1..65535, got " + blockTokens);
        }
        if (c.groupSize() > 0 && blockTokens % c.groupSize() != 0) {
            throw new IllegalArgumentException("kv codec " + c + " quantizes groups of " + c.groupSize()
                    + " tokens, which must divide the block size " + blockTokens);
        }
        if (pruningFraction < 0 || pruningFraction > 1) {
            throw new IllegalArgumentException("head-pruning fraction must be in 0..1, got " + pruningFraction);
        }
        if (pruningMaxOutsideMass < 0 || pruningMaxOutsideMass > 1) {
            throw new IllegalArgumentException("head-pruning max outside mass must be in 0..1, got " + pruningMaxOutsideMass);
        }
        if (pruningSink < 0 || pruningWindow < 1) {
            throw new IllegalArgumentException("head-pruning needs sink >= 0 and window >= 1, got " + pruningSink + ", " + pruningWindow);
        }
        if (ttlMillis < 0) {
            throw new IllegalArgumentException("state TTL must be >= 0 (0 = never expire), got " + ttlMillis);
        }
        if (tenantMaxContexts < 0) {
            throw new IllegalArgumentException("tenant max contexts must be >= 0 (0 = no cap), got " + tenantMaxContexts);
        }
    }

    public static KvStateConfig defaults() {
        return new KvStateConfig(DEFAULT_CODEC, DEFAULT_BLOCK_TOKENS, false, DEFAULT_PRUNING_FRACTION,
                DEFAULT_PRUNING_MAX_OUTSIDE_MASS, DEFAULT_PRUNING_SINK, DEFAULT_PRUNING_WINDOW, DEFAULT_TTL_MILLIS,
                DEFAULT_TENANT_MAX_CONTEXTS);
    }

    public KvCodec kvCodec() {
        return KvCodec.parse(codec);
    }

    public KvStateConfig withCodec(String value) {
        return new KvStateConfig(value, blockTokens, headPruning, pruningFraction, pruningMaxOutsideMass, pruningSink,
                pruningWindow, ttlMillis, tenantMaxContexts);
    }

    public KvStateConfig withBlockTokens(int value) {
        return new KvStateConfig(codec, value, headPruning, pruningFraction, pruningMaxOutsideMass, pruningSink,
                pruningWindow, ttlMillis, tenantMaxContexts);
    }

    public KvStateConfig withHeadPruning(boolean on, double fraction, double maxOutsideMass, int sink, int window) {
        return new KvStateConfig(codec, blockTokens, on, fraction, maxOutsideMass, sink, window, ttlMillis, tenantMaxContexts);
    }

    public KvStateConfig withTtlMillis(long value) {
        return new KvStateConfig(codec, blockTokens, headPruning, pruningFraction, pruningMaxOutsideMass, pruningSink,
                pruningWindow, value, tenantMaxContexts);
    }

    public KvStateConfig withTenantMaxContexts(int value) {
        return new KvStateConfig(codec, blockTokens, headPruning, pruningFraction, pruningMaxOutsideMass, pruningSink,
                pruningWindow, ttlMillis, value);
    }
}
