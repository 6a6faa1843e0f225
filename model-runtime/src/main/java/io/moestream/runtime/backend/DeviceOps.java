package io.moestream.runtime.backend;

import io.moestream.runtime.graph.Act;
import io.moestream.runtime.graph.Ops;
import io.moestream.runtime.graph.TensorRole;
import io.moestream.runtime.model.ModelConfig;

/**
 * The {@link Ops} on a device {@link Backend} (a GPU): activations are device {@link Tensor}s, the
 * KV is the device's paged pool. {@link BackendForward} sets up each pass (its rows, their
 * positions, the blocks they write and read) through {@link #begin}.
 *
 * <p>Not thread-safe: one per {@link BackendForward}.
 */
final class DeviceOps implements Ops {

    /** One pass: its rows and their KV metadata, already on the device. */
    record Pass(int n, Tensor tokens, Tensor positions, Tensor slots, Tensor seals, AttentionBatch batch, Tensor lastRows) {}

    private final Backend backend;
    private final ModelConfig c;
    private final DeviceWeights w;
    private final KvPool pool;
    private final RopeSpec rope;
    private final Tensor[] acts = new Tensor[Act.values().length];
    private final Tensor eb;     // (rows * used, expertDim) expert gate activations, per assignment
    private final Tensor eb2;    // (rows * used, expertDim) expert up activations
    private final Tensor down;   // (rows * used, dim) expert outputs
    private final Tensor sb;     // (rows, sharedExpertDim) shared expert gate activations
    private final Tensor sb2;    // (rows, sharedExpertDim) shared expert up activations
    private final Tensor gate;   // (rows, 1) shared expert gate logits
    private final Tensor routerLogits;  // (rows, experts)
    private final Tensor expertIds;     // (rows, used) I32
    private final Tensor expertWeights; // (rows, used)
    private final Tensor xLast;  // (rows, dim) residual of the rows whose logits are wanted
    private final Tensor logits; // (rows, vocab)
    private Pass pass;
    private float[] out;

    DeviceOps(Backend backend, ModelConfig c, DeviceWeights w, KvPool pool, int maxRows) {
        this.backend = backend;
        this.c = c;
        this.w = w;
        this.pool = pool;
        this.rope = RopeSpec.of(c);
        int n = maxRows;
        int used = c.isMoe() ? c.expertsUsed() : 1;
        boolean dense = !c.isMoe() || c.leadingDenseLayers() > 0;
        boolean shared = c.sharedExpertDim() > 0;
        Tensor.DType f32 = Tensor.DType.F32;
        int[] cols = new int[Act.values().length];
        cols[Act.X.ordinal()] = c.dim();
        cols[Act.XB.ordinal()] = c.dim();
        cols[Act.XB2.ordinal()] = c.dim();
        cols[Act.Q.ordinal()] = c.qDim();
        cols[Act.K.ordinal()] = c.kvDim();
        cols[Act.V.ordinal()] = c.kvDim();
        cols[Act.ATT.ordinal()] = c.qDim();
        cols[Act.HB.ordinal()] = dense ? c.ffnDim() : 0;
        cols[Act.HB2.ordinal()] = dense ? c.ffnDim() : 0;
        cols[Act.SHARED.ordinal()] = shared ? c.dim() : 0;
        for (Act a : Act.values()) {
            acts[a.ordinal()] = cols[a.ordinal()] == 0 ? null : backend.allocate(f32, n, cols[a.ordinal()]);
        }
        eb = c.isMoe() ? backend.allocate(f32, n * used, c.expertDim()) : null;
        eb2 = c.isMoe() ? backend.allocate(f32, n * used, c.expertDim()) : null;
        down = c.isMoe() ? backend.allocate(f32, n * used, c.dim()) : null;
        sb = shared ? backend.allocate(f32, n, c.sharedExpertDim()) : null;
        sb2 = shared ? backend.allocate(f32, n, c.sharedExpertDim()) : null;
        gate = c.sharedExpertGate() ? backend.allocate(f32, n, 1) : null;
        routerLogits = c.isMoe() ? backend.allocate(f32, n, c.experts()) : null;
        expertIds = c.isMoe() ? backend.allocate(Tensor.DType.I32, n, used) : null;
        expertWeights = c.isMoe() ? backend.allocate(f32, n, used) : null;
        xLast = backend.allocate(f32, n, c.dim());
        logits = backend.allocate(f32, n, c.vocabSize());
    }

    /** Sets up the next pass. */
    void begin(Pass pass) {
        this.pass = pass;
        this.out = null;
    }

    /** The logits of the pass's last rows, row after row ({@code lastRows} rows of vocab), or null when none were wanted. */
    float[] logitsOut() {
        return out;
    }

    private Tensor t(Act a) {
        Tensor t = acts[a.ordinal()];
        if (t == null) {
            throw notImplemented("over activation " + a + (a == Act.QA || a == Act.QB || a == Act.VO ? " (multi-head latent attention)" : ""));
        }
        return t.rows(pass.n);
    }

    private WeightHandle weight(TensorRole role, int l) {
        return w.get(role, l);
    }

    @Override
    public void embed() {
        backend.embed(weight(TensorRole.TOKEN_EMBD, -1), pass.tokens, t(Act.X));
    }

    @Override
    public void norm(Act in, Act out, TensorRole weight, int l) {
        backend.rmsnorm(t(in), weight(weight, l), c.rmsEps(), t(out));
    }

    @Override
    public void headNorm(Act x, int heads, int width, TensorRole weight, int l) {
        backend.rmsnorm(t(x), weight(weight, l), c.rmsEps(), t(x));
    }

    @Override
    public void qkv(Act in, int l) {
        backend.matmul(weight(TensorRole.ATTN_Q, l), t(in), t(Act.Q));
        backend.matmul(weight(TensorRole.ATTN_K, l), t(in), t(Act.K));
        backend.matmul(weight(TensorRole.ATTN_V, l), t(in), t(Act.V));
    }

    @Override
    public void matmul(TensorRole role, int l, Act in, Act out) {
        backend.matmul(weight(role, l), t(in), t(out));
    }

    @Override
    public void matmul(TensorRole w1, Act out1, TensorRole w2, Act out2, int l, Act in) {
        backend.matmul(weight(w1, l), t(in), t(out1));
        backend.matmul(weight(w2, l), t(in), t(out2));
    }

    @Override
    public void addBias(Act x, TensorRole bias, int l) {
        WeightHandle b = weight(bias, l);
        if (b != null) {
            backend.addBias(t(x), b);
        }
    }

    @Override
    public void rope(Act x, int heads, int stride, int offset) {
        if (stride != c.headDim() || offset != 0) {
            throw notImplemented("rope of a part of each head (MLA)");
        }
        backend.rope(t(x), pass.positions, rope);
    }

    @Override
    public void attention(int l) {
        backend.kvStore(pool, l, t(Act.K), t(Act.V), pass.slots);
        if (pass.seals != null) {
            backend.kvSeal(pool, l, pass.seals);
        }
        WeightHandle sinks = c.attention().sinks() ? weight(TensorRole.ATTN_SINKS, l) : null;
        AttentionSpec spec = new AttentionSpec(c.attentionScale(), c.isSlidingLayer(l) ? c.attention().window() : 0, sinks);
        backend.attention(t(Act.Q), pool, l, pass.batch, spec, t(Act.ATT));
    }

    @Override
    public void swiglu(Act gate, Act up, int width) {
        backend.swiglu(t(gate), t(up), t(gate));
    }

    @Override
    public void add(Act acc, Act d) {
        backend.add(t(acc), t(d));
    }

    @Override
    public void headMatmul(TensorRole role, int l, Act in, int inStride, Act out, int outStride, boolean contiguous) {
        throw notImplemented("headMatmul (MLA " + role + ")");
    }

    @Override
    public void copyHeads(Act from, int fromStride, int fromOffset, Act to, int toStride, int toOffset, int width, int heads) {
        throw notImplemented("copyHeads (MLA)");
    }

    @Override
    public void scale(Act x, float s) {
        backend.scale(t(x), s);
    }

    /** The op is not implemented on this backend: the model cannot run on it. */
    private UnsupportedOperationException notImplemented(String op) {
        return new UnsupportedOperationException("op " + op + " is not implemented on the " + backend.name() + " backend ("
                + c.architecture() + ")");
    }

    @Override
    public void route(int l) {
        int n = pass.n;
        backend.matmul(weight(TensorRole.FFN_GATE_INP, l), t(Act.XB), routerLogits.rows(n));
        WeightHandle logitBias = weight(TensorRole.FFN_GATE_INP_BIAS, l);
        if (logitBias != null) {
            backend.addBias(routerLogits.rows(n), logitBias);
        }
        backend.route(routerLogits.rows(n), weight(TensorRole.EXP_PROBS_B, l), c.routing(), expertIds.rows(n), expertWeights.rows(n));
    }

    @Override
    public void experts(int l, boolean shared, Glu glu) {
        int n = pass.n;
        int a = n * c.expertsUsed();
        Tensor ids = expertIds.rows(n);
        Tensor xb = t(Act.XB);
        backend.expertMatmul(weight(TensorRole.FFN_GATE_EXPS, l), xb, ids, eb.rows(a));
        backend.expertMatmul(weight(TensorRole.FFN_UP_EXPS, l), xb, ids, eb2.rows(a));
        expertBias(eb2.rows(a), TensorRole.FFN_UP_EXPS_BIAS, l, ids);
        expertBias(eb.rows(a), TensorRole.FFN_GATE_EXPS_BIAS, l, ids);
        if (glu == Glu.SWIGLU_OAI) {
            backend.swigluOai(eb.rows(a), eb2.rows(a), Glu.OAI_ALPHA, Glu.OAI_LIMIT, eb.rows(a));
        } else {
            backend.swiglu(eb.rows(a), eb2.rows(a), eb.rows(a));
        }
        backend.expertMatmul(weight(TensorRole.FFN_DOWN_EXPS, l), eb.rows(a), ids, down.rows(a));
        expertBias(down.rows(a), TensorRole.FFN_DOWN_EXPS_BIAS, l, ids);
        backend.combine(down.rows(a), expertWeights.rows(n), t(Act.XB2));
        if (shared) {
            backend.matmul(weight(TensorRole.FFN_GATE_SHEXP, l), xb, sb.rows(n));
            backend.matmul(weight(TensorRole.FFN_UP_SHEXP, l), xb, sb2.rows(n));
            backend.swiglu(sb.rows(n), sb2.rows(n), sb.rows(n));
            backend.matmul(weight(TensorRole.FFN_DOWN_SHEXP, l), sb.rows(n), t(Act.SHARED));
        }
    }

    /** Adds each assignment's expert bias of {@code role} when the layer has one (gpt-oss). */
    private void expertBias(Tensor x, TensorRole role, int l, Tensor ids) {
        WeightHandle b = weight(role, l);
        if (b != null) {
            backend.addExpertBias(x, b, ids);
        }
    }

    @Override
    public void addGated(Act acc, Act d, TensorRole gateWeight, int l) {
        backend.matmul(weight(gateWeight, l), t(Act.XB), gate.rows(pass.n));
        backend.addGated(t(acc), t(d), gate.rows(pass.n));
    }

    @Override
    public void logits(float scale) {
        int m = pass.lastRows == null ? 0 : pass.lastRows.rows();
        if (m == 0) {
            return;
        }
        backend.gather(t(Act.X), pass.lastRows, xLast.rows(m));
        backend.rmsnorm(xLast.rows(m), weight(TensorRole.OUTPUT_NORM, -1), c.rmsEps(), acts[Act.XB.ordinal()].rows(m));
        backend.matmul(weight(TensorRole.OUTPUT, -1), acts[Act.XB.ordinal()].rows(m), logits.rows(m));
        if (scale != 1f) {
            backend.scale(logits.rows(m), scale);
        }
        out = new float[m * c.vocabSize()];
        backend.read(logits.rows(m), out);
    }

    void close() {
        for (Tensor t : acts) {
            if (t != null) {
                t.close();
            }
        }
        for (Tensor t : new Tensor[] {eb, eb2, down, sb, sb2, gate, routerLogits, expertIds, expertWeights, xLast, logits}) {
            if (t != null) {
                t.close();
            }
        }
    }
}
