package io.moestream.runtime.graph;

/** The activation matrices of a step, one row per token of the step (llama2.c names). */
public enum Act {
    /** (n, dim) the residual stream. */
    X,
    /** (n, dim) the normalised input of a sub-layer. */
    XB,
    /** (n, dim) a sub-layer's output. */
    XB2,
    /** (n, heads * headDim) queries. */
    Q,
    /** (n, kvHeads * headDim) keys. */
    K,
    /** (n, kvHeads * headDim) values. */
    V,
    /** (n, heads * headDim) attention output. */
    ATT,
    /** (n, ffn width) gate activations. */
    HB,
    /** (n, ffn width) up activations. */
    HB2,
    /** (n, dim) the shared expert's output. */
    SHARED,
    /** MLA: (n, qLoraRank) the query latent. */
    QA,
    /** MLA: (n, heads * (qkNope + qkRope)) the queries before absorption. */
    QB,
    /** MLA: (n, heads * vHead) the heads' values, the input of the output projection. */
    VO
}
