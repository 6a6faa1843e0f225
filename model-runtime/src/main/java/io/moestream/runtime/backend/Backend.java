package io.moestream.runtime.backend;

import io.moestream.runtime.gguf.GgufTensor;
import io.moestream.runtime.kv.KvCodec;
import io.moestream.runtime.moe.RoutingConfig;

/**
 * A device backend (a GPU) in the spirit of ggml-backend: it owns resident weights
 * ({@link WeightHandle}), activation tensors ({@link Tensor}) and paged KV blocks ({@link KvPool}),
 * and runs the tensor ops that {@link DeviceOps} maps the forward pass's ops to. Its results are
 * checked against the CPU engine, the exact path.
 *
 * <p>Ops are enqueued in call order and may run asynchronously; {@link #read} waits for everything
 * before it. Unless stated, an op's output must not alias its inputs. One backend instance is used
 * by one thread (one engine per Flink slot); resident weights may be shared between the instances
 * on one device.
 *
 * <p>Numerics every backend follows (so that they match): products with F16 weights round the
 * activation to F16 first, BF16 weights to BF16, and Q8_0/Q4_0 weights quantize it to Q8_0 per 32
 * values ({@link ActivationQuantizer}) and integer-dot the blocks, as llama.cpp does on the CPU.
 */
public interface Backend extends AutoCloseable {

    /** Short name for logs, e.g. {@code cpu} or {@code cuda:0 (NVIDIA H200)}. */
    String name();

    /** Whether {@link #kvSeal} and {@link #attention} handle sealed blocks stored with {@code codec}. */
    boolean supports(KvCodec codec);

    // ---- memory ------------------------------------------------------------------------------

    /**
     * Makes {@code tensor} (1-D vector, 2-D matrix or 3-D expert stack) resident. Backends on the same
     * device share one copy per {@code key} (e.g. file path + tensor name), uploaded once.
     */
    WeightHandle upload(String key, GgufTensor tensor);

    /** A zeroed tensor. */
    Tensor allocate(Tensor.DType dtype, int rows, int cols);

    /** Copies {@code rows*cols} floats in; the tensor must be F32. */
    void write(Tensor t, float[] src);

    /** Copies {@code rows*cols} ints in; the tensor must be I32. */
    void write(Tensor t, int[] src);

    /** Copies the tensor out after all queued work; F32. */
    void read(Tensor t, float[] dst);

    /** Copies the tensor out after all queued work; I32. */
    void read(Tensor t, int[] dst);

    /** A pool of {@code blocks} sealed and {@code openBlocks} open physical KV blocks (zeroed). */
    KvPool allocateKv(KvLayout layout, int blocks, int openBlocks);

    /** Loads one sealed block (bytes in the {@link KvLayout} format, e.g. from keyed state). */
    void writeKvBlock(KvPool pool, int block, byte[] bytes);

    /** One sealed block in the {@link KvLayout} format (e.g. to write back to keyed state). */
    byte[] readKvBlock(KvPool pool, int block);

    /** Loads one open block (float32 {@link KvLayout} format: a context's partial last block). */
    void writeOpenKvBlock(KvPool pool, int openBlock, byte[] bytes);

    /** One open block in the float32 {@link KvLayout} format. */
    byte[] readOpenKvBlock(KvPool pool, int openBlock);

    // ---- ops ---------------------------------------------------------------------------------

    /** {@code out[r] = table[tokens[r]]} dequantized; tokens I32 (rows, 1). */
    void embed(WeightHandle table, Tensor tokens, Tensor out);

    /** {@code out[b] = W x[b]}: x (n, W.cols), out (n, W.rows). */
    void matmul(WeightHandle w, Tensor x, Tensor out);

    /**
     * RMSNorm of each group of {@code weight.cols()} values of each row (the whole row, or one head
     * for QK norm): {@code out = x / sqrt(mean(x^2) + eps) * weight}. {@code out} may be {@code x}.
     */
    void rmsnorm(Tensor x, WeightHandle weight, float eps, Tensor out);

    /** Rotates x (rows, heads * headDim) in place; positions I32 (rows, 1). */
    void rope(Tensor x, Tensor positions, RopeSpec spec);

    /**
     * Writes k and v (rows, kvDim) of {@code layer} as float32 into open-block slots {@code slots}
     * (I32 (rows, 1), slot = openBlock * B + offset).
     */
    void kvStore(KvPool pool, int layer, Tensor k, Tensor v, Tensor slots);

    /**
     * Compresses {@code layer} of full open blocks into sealed blocks with the pool's codec: seals is
     * I32 (n, 2), each row {@code {openBlock, sealedBlock}}. The same floats give the same bytes as
     * the CPU engine's cache (KIVI: f16 min rounded down, scale up, nearest code).
     */
    void kvSeal(KvPool pool, int layer, Tensor seals);

    /**
     * Causal softmax attention of q (rows, heads * headDim) over paged KV of {@code layer} (sealed
     * blocks before each row's block, its own block open; see {@link AttentionBatch}), GQA by head
     * groups, scaled, windowed and with sinks as {@code spec} says.
     */
    void attention(Tensor q, KvPool pool, int layer, AttentionBatch batch, AttentionSpec spec, Tensor out);

    /** {@code out = silu(gate) * up}; out may be gate. */
    void swiglu(Tensor gate, Tensor up, Tensor out);

    /**
     * gpt-oss's clamped SwiGLU: {@code x = min(gate, limit)}, {@code out = x / (1 + exp(-alpha x)) *
     * (clamp(up, -limit, limit) + 1)}; out may be gate.
     */
    void swigluOai(Tensor gate, Tensor up, float alpha, float limit, Tensor out);

    /**
     * Expert biases: {@code x[a] += bias[ids[a]]} for every assignment a = t * k + j of {@code ids}
     * (n, k); bias (experts, x.cols) F32, x (n * k, cols).
     */
    void addExpertBias(Tensor x, WeightHandle bias, Tensor ids);

    /** {@code acc += d}. */
    void add(Tensor acc, Tensor d);

    /** {@code x *= s}, every value (granite's embedding, residual and logit multipliers). */
    void scale(Tensor x, float s);

    /** {@code x[r] += bias} for every row; bias (1, x.cols). */
    void addBias(Tensor x, WeightHandle bias);

    /** {@code acc[r] += sigmoid(gate[r]) * d[r]} for every row; gate (rows, 1) logits. */
    void addGated(Tensor acc, Tensor d, Tensor gate);

    /**
     * Routing of each row of router logits (n, experts) as {@link io.moestream.runtime.moe.Router}
     * does under {@code routing}: chosen expert ids I32 (n, k) in descending score order and their
     * weights F32 (n, k). {@code bias} (1, experts) or null.
     */
    void route(Tensor logits, WeightHandle bias, RoutingConfig routing, Tensor ids, Tensor weights);

    /**
     * Expert products grouped by expert: assignment a = t * k + j uses expert {@code ids[t][j]} of the
     * stack; x is per token (n, cols) or per assignment (n * k, cols); out is (n * k, rows).
     */
    void expertMatmul(WeightHandle experts, Tensor x, Tensor ids, Tensor out);

    /** {@code out[t] = sum_j weights[t][j] * expertOut[t * k + j]}, j in order. */
    void combine(Tensor expertOut, Tensor weights, Tensor out);

    /** {@code out[i] = src[rows[i]]}; rows I32 (n, 1). */
    void gather(Tensor src, Tensor rows, Tensor out);

    /** Waits for all queued work. */
    void synchronize();

    /** Frees everything this instance allocated (shared weights are released by reference count). */
    @Override
    void close();
}
