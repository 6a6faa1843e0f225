package io.moestream.runtime.graph;

/**
 * The operations a backend executes for the forward pass, each over all n tokens of one step (rows
 * of the {@link Act} matrices), with weights named by {@link TensorRole} and layer. The CPU backend
 * is llama.cpp's arithmetic op for op (docs/runtime.md); another backend gives the same results
 * within its own rounding. A backend sets up a step (tokens, positions, KV caches) before
 * {@link Forward#run} and reads the logits after it.
 */
public interface Ops {

    /** The gated activation of the experts' gate and up outputs. */
    enum Glu {
        /** silu(gate) * up. */
        SWIGLU,
        /** gpt-oss: min(gate, 7) * sigmoid(1.702 min(gate, 7)) * (clamp(up, -7, 7) + 1). */
        SWIGLU_OAI;

        /** {@link #SWIGLU_OAI}'s constants (llama.cpp's {@code LLM_FFN_SWIGLU_OAI_MOE}). */
        public static final float OAI_ALPHA = 1.702f;
        public static final float OAI_LIMIT = 7.0f;
    }

    /** X = the token embeddings of the step's tokens. */
    void embed();

    /** out = in / sqrt(mean(in^2) + eps) * weight, row by row; out may be in. */
    void norm(Act in, Act out, TensorRole weight, int layer);

    /** The same RMSNorm on each of the first {@code heads} spans of {@code width} values of x, in place (QK norm). */
    void headNorm(Act x, int heads, int width, TensorRole weight, int layer);

    /** Q, K and V = projections of {@code in}: three matrices or one fused {@link TensorRole#ATTN_QKV}. */
    void qkv(Act in, int layer);

    /** out = W in, row by row. */
    void matmul(TensorRole w, int layer, Act in, Act out);

    /** out1 = W1 in and out2 = W2 in as one job (in is prepared once). */
    void matmul(TensorRole w1, Act out1, TensorRole w2, Act out2, int layer, Act in);

    /** x += bias for every row; nothing when the layer has no such bias. */
    void addBias(Act x, TensorRole bias, int layer);

    /**
     * Rotates, in each of {@code heads} spans of {@code stride} values of x, the ropeDims dimensions
     * from {@code offset} by each row's position (a plain head: stride headDim, offset 0).
     */
    void rope(Act x, int heads, int stride, int offset);

    /**
     * Per head h: {@code out[h * outStride ..)} = W_h {@code in[h * inStride ..)}, W_h the h-th matrix of
     * the stack {@code w} (its cols values in, its rows out). {@code contiguous}: whether llama.cpp's
     * input is a contiguous tensor, so a multi-token step sums as a prefill chunk; a strided view is
     * always summed one row at a time.
     */
    void headMatmul(TensorRole w, int layer, Act in, int inStride, Act out, int outStride, boolean contiguous);

    /** {@code to[h * toStride + toOffset + i] = from[h * fromStride + fromOffset + i]} for i &lt; width, h &lt; heads. */
    void copyHeads(Act from, int fromStride, int fromOffset, Act to, int toStride, int toOffset, int width, int heads);

    /**
     * Appends K and V of the step's tokens to their sequences' KV caches at {@code layer} and writes
     * ATT = causal softmax attention of Q over each token's sequence (GQA, scores times the config's
     * {@link io.moestream.runtime.model.ModelConfig#attentionScale}; on a sliding-window layer only
     * the window; with the layer's {@link TensorRole#ATTN_SINKS} in each softmax).
     */
    void attention(int layer);

    /** gate = silu(gate) * up over the first {@code width} columns. */
    void swiglu(Act gate, Act up, int width);

    /** acc += d. */
    void add(Act acc, Act d);

    /** x *= s, every value (ggml_scale). */
    void scale(Act x, float s);

    /**
     * Picks each row's experts and weights from XB (router {@link TensorRole#FFN_GATE_INP} plus its
     * bias where the layer has one, the model's routing).
     */
    void route(int layer);

    /**
     * XB2 = each row's routed experts' outputs of XB ({@code glu} of gate and up, then down; each
     * product plus the expert's bias where the layer has expert biases), weighted and summed in the
     * router's order; with {@code shared}, also SHARED = the shared expert's SwiGLU output (one job
     * with the experts').
     */
    void experts(int layer, boolean shared, Glu glu);

    /** acc += sigmoid(gate . XB) * d per row, gate a one-row weight. */
    void addGated(Act acc, Act d, TensorRole gate, int layer);

    /** The output norm and head on the rows whose logits the step wants, the logits times {@code scale} (when not 1). */
    void logits(float scale);
}
