package io.moestream.runtime.backend;

/** The operations of the {@link Backend} SPI; support for each is a query ({@link Backend#supports}). */
public enum Op {
    /** Weight rows by token id (get_rows), dequantized to F32. */
    EMBED,
    /** {@code out[b] = W x[b]} for a small batch of rows. */
    MATMUL,
    /** Per-assignment products with the expert chosen by routing, grouped by expert. */
    EXPERT_MATMUL,
    /** RMSNorm over groups of the row (whole row, or per head for QK norm). */
    RMSNORM,
    /** Rotary position embedding, NORM or NEOX pairing, optionally on the first dims only. */
    ROPE,
    /** Writes K and V rows into open (float32) blocks of the paged KV pool. */
    KV_STORE,
    /** Compresses full open blocks, one layer at a time, into sealed blocks of the pool's codec. */
    KV_SEAL,
    /** Causal attention of query rows over paged KV blocks, sealed blocks dequantized in place. */
    ATTENTION,
    /** {@code silu(gate) * up}. */
    SWIGLU,
    /** Router gating, group-limited selection and top-k with weights. */
    ROUTE,
    /** Weighted sum of the chosen experts' outputs per token. */
    COMBINE,
    /** Element-wise residual add. */
    ADD,
    /** Adds a bias vector to every row. */
    ADD_BIAS,
    /** Adds rows scaled by a per-row sigmoid gate (the gated shared expert). */
    ADD_GATED,
    /** Row gather (e.g. the last row of each sequence before the output head). */
    GATHER
}
