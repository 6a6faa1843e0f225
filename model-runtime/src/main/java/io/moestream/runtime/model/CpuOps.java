package io.moestream.runtime.model;

import io.moestream.runtime.graph.Act;
import io.moestream.runtime.graph.Ops;
import io.moestream.runtime.graph.TensorRole;
import io.moestream.runtime.kernel.CpuMath;
import io.moestream.runtime.kernel.DotOrder;
import io.moestream.runtime.kernel.Kernels;
import io.moestream.runtime.kernel.Libm;
import io.moestream.runtime.moe.Router;

import java.util.Arrays;

/**
 * The CPU backend: the {@link Ops} over {@code [tokens][width]} float matrices, so each weight
 * matrix is read once per step ({@link WeightMatrix.Products}: native C, Vector API or scalar
 * kernels, split over the {@link io.moestream.runtime.kernel.MatmulPool}) and in MoE layers each
 * expert runs once over the tokens routed to it. The float operations are those of llama.cpp's
 * CPU backend (AVX-512, GCC), op by op and in the same order, so logits are bit-identical to its
 * goldens; F32/F16 sums depend, as there, on whether a sequence's chunk is one token
 * ({@link DotOrder}). Every token's arithmetic is the same whatever else is in the step.
 *
 * <p>Not thread-safe: one per {@link Engine}.
 */
final class CpuOps implements Ops {

    private static final float OAI_ALPHA = Glu.OAI_ALPHA;
    private static final float OAI_LIMIT = Glu.OAI_LIMIT;

    private final ModelConfig c;
    private final Weights w;
    private final Router router;
    private final CpuAttention attention;
    private final YarnRope yarn;
    private CpuBuffers b;
    private CpuStep step;

    CpuOps(Model model, CpuAttention attention) {
        this.c = model.config();
        this.w = model.weights();
        this.router = c.isMoe() ? new Router(c.routing()) : null;
        this.attention = attention;
        this.yarn = c.yarn() == null ? null : new YarnRope(c);
        this.b = new CpuBuffers(c, 0);
    }

    /** Sets up the next step: its rows and their RoPE angles. */
    void begin(CpuStep step) {
        this.step = step;
        if (step.n > b.capacity) {
            b = new CpuBuffers(c, Math.max(step.n, b.capacity * 2));
        }
        for (int t = 0; t < step.n; t++) {
            ropeAngles(step.pos[t], b.ropeCos[t], b.ropeSin[t]);
        }
    }

    private float[][] a(Act act) {
        return switch (act) {
            case X -> b.x;
            case XB -> b.xb;
            case XB2 -> b.xb2;
            case Q -> b.q;
            case K -> b.k;
            case V -> b.v;
            case ATT -> b.attOut;
            case HB -> b.hb;
            case HB2 -> b.hb2;
            case SHARED -> b.ffnOut;
            case QA -> b.qa;
            case QB -> b.qb;
            case VO -> b.vo;
        };
    }

    /**
     * The sum order of a product: llama.cpp runs the last layer's FFN only for the rows whose logits
     * are wanted, each sequence's alone: one token, so decode order (the other rows' results are
     * never read).
     */
    private DotOrder[] order(TensorRole role, int l) {
        return role.ffn() && l == c.layers() - 1 ? b.decodeOrder : step.order;
    }

    @Override
    public void embed() {
        WeightMatrix embd = w.matrix(TensorRole.TOKEN_EMBD, -1);
        for (int t = 0; t < step.n; t++) {
            embd.dequantizeRow(step.tokens[t], b.x[t], 0);
        }
    }

    @Override
    public void norm(Act in, Act out, TensorRole weight, int l) {
        float[][] x = a(in);
        float[][] y = a(out);
        float[] g = w.vector(weight, l);
        for (int t = 0; t < step.n; t++) {
            rmsnorm(y[t], x[t], 0, g, c.dim());
        }
    }

    @Override
    public void headNorm(Act x, int heads, int width, TensorRole weight, int l) {
        float[][] v = a(x);
        float[] g = w.vector(weight, l);
        for (int t = 0; t < step.n; t++) {
            for (int h = 0; h < heads; h++) {
                rmsnorm(v[t], v[t], h * width, g, width);
            }
        }
    }

    @Override
    public void qkv(Act in, int l) {
        int n = step.n;
        float[][] x = a(in);
        WeightMatrix fused = w.matrix(TensorRole.ATTN_QKV, l);
        if (fused != null) {
            fused.matmul(x, b.qkv, n, step.order);
            int qDim = c.qDim();
            int kvDim = c.kvDim();
            for (int t = 0; t < n; t++) {
                System.arraycopy(b.qkv[t], 0, b.q[t], 0, qDim);
                System.arraycopy(b.qkv[t], qDim, b.k[t], 0, kvDim);
                System.arraycopy(b.qkv[t], qDim + kvDim, b.v[t], 0, kvDim);
            }
        } else {
            WeightMatrix.Products.local()
                    .add(w.matrix(TensorRole.ATTN_Q, l), x, b.q, n, step.order)
                    .add(w.matrix(TensorRole.ATTN_K, l), x, b.k, n, step.order)
                    .add(w.matrix(TensorRole.ATTN_V, l), x, b.v, n, step.order)
                    .run();
        }
    }

    @Override
    public void matmul(TensorRole role, int l, Act in, Act out) {
        w.matrix(role, l).matmul(a(in), a(out), step.n, order(role, l));
    }

    @Override
    public void matmul(TensorRole w1, Act out1, TensorRole w2, Act out2, int l, Act in) {
        float[][] x = a(in);
        WeightMatrix.Products.local()
                .add(w.matrix(w1, l), x, a(out1), step.n, order(w1, l))
                .add(w.matrix(w2, l), x, a(out2), step.n, order(w2, l))
                .run();
    }

    @Override
    public void addBias(Act x, TensorRole bias, int l) {
        float[] v = w.vector(bias, l);
        if (v != null) {
            float[][] rows = a(x);
            for (int t = 0; t < step.n; t++) {
                add(rows[t], v);
            }
        }
    }

    @Override
    public void rope(Act x, int heads, int stride, int offset) {
        float[][] rows = a(x);
        for (int t = 0; t < step.n; t++) {
            rope(rows[t], heads, stride, offset, b.ropeCos[t], b.ropeSin[t]);
        }
    }

    @Override
    public void headMatmul(TensorRole role, int l, Act in, int inStride, Act out, int outStride, boolean contiguous) {
        int n = step.n;
        WeightMatrix[] w1 = w.experts(role, l);
        float[][] x = a(in);
        float[][] y = a(out);
        DotOrder[] order = contiguous ? step.order : b.decodeOrder;
        float[][][] xs = new float[w1.length][n][];
        float[][][] ys = new float[w1.length][n][];
        WeightMatrix.Products products = WeightMatrix.Products.local();
        for (int h = 0; h < w1.length; h++) {
            for (int t = 0; t < n; t++) {
                xs[h][t] = Arrays.copyOfRange(x[t], h * inStride, h * inStride + w1[h].cols());
                ys[h][t] = new float[w1[h].rows()];
            }
            products.add(w1[h], xs[h], ys[h], n, order);
        }
        products.run();
        for (int h = 0; h < w1.length; h++) {
            for (int t = 0; t < n; t++) {
                System.arraycopy(ys[h][t], 0, y[t], h * outStride, ys[h][t].length);
            }
        }
    }

    @Override
    public void copyHeads(Act from, int fromStride, int fromOffset, Act to, int toStride, int toOffset, int width, int heads) {
        float[][] x = a(from);
        float[][] y = a(to);
        for (int t = 0; t < step.n; t++) {
            for (int h = 0; h < heads; h++) {
                System.arraycopy(x[t], h * fromStride + fromOffset, y[t], h * toStride + toOffset, width);
            }
        }
    }

    @Override
    public void attention(int l) {
        for (int t = 0; t < step.n; t++) {
            step.caches[t].paged().write(l, step.pos[t], b.k[t], 0, b.v[t], 0);
        }
        attention.attend(l, step, b.q, b.attOut, c.attention().sinks() ? w.vector(TensorRole.ATTN_SINKS, l) : null);
    }

    @Override
    public void swiglu(Act gate, Act up, int width) {
        float[][] g = a(gate);
        float[][] u = a(up);
        for (int t = 0; t < step.n; t++) {
            Kernels.get().swiglu(g[t], u[t], width);
        }
    }

    @Override
    public void add(Act acc, Act d) {
        float[][] x = a(acc);
        float[][] y = a(d);
        for (int t = 0; t < step.n; t++) {
            add(x[t], y[t]);
        }
    }

    /** ggml_vec_scale_f32: one float multiply per value. */
    @Override
    public void scale(Act x, float s) {
        float[][] rows = a(x);
        for (int t = 0; t < step.n; t++) {
            float[] row = rows[t];
            for (int i = 0; i < row.length; i++) {
                row[i] *= s;
            }
        }
    }

    @Override
    public void route(int l) {
        WeightMatrix gate = w.matrix(TensorRole.FFN_GATE_INP, l);
        float[] bias = w.vector(TensorRole.EXP_PROBS_B, l);
        float[] logitBias = w.vector(TensorRole.FFN_GATE_INP_BIAS, l);
        DotOrder[] order = order(TensorRole.FFN_GATE_INP, l);
        for (int t = 0; t < step.n; t++) {
            gate.matmul(b.xb[t], b.routerLogits, order[t]);
            if (logitBias != null) {
                add(b.routerLogits, logitBias);
            }
            router.route(b.routerLogits, bias, b.chosen[t], b.chosenWeights[t]);
        }
    }

    /**
     * Dispatch (the rows routed to each expert, in token order), every chosen expert's gate and up as
     * one pool job and every down as one (with the shared expert's), then each token adds its
     * weighted experts in the router's order, as llama.cpp's chain of adds. llama.cpp's
     * {@code mul_mat_id} computes each (token, expert) row alone: decode order.
     */
    @Override
    public void experts(int l, boolean shared, Glu glu) {
        int n = step.n;
        int k = c.expertsUsed();
        int experts = c.experts();
        int[] count = new int[experts];
        for (int t = 0; t < n; t++) {
            for (int j = 0; j < k; j++) {
                count[b.chosen[t][j]]++;
            }
        }
        int[][] tokens = new int[experts][];
        int[][] slots = new int[experts][];
        float[][][] in = new float[experts][][];
        for (int e = 0; e < experts; e++) {
            tokens[e] = new int[count[e]];
            slots[e] = new int[count[e]];
            in[e] = new float[count[e]][];
            int m = 0;
            for (int t = 0; t < n; t++) {
                for (int j = 0; j < k; j++) {
                    if (b.chosen[t][j] == e) {
                        tokens[e][m] = t;
                        slots[e][m] = j;
                        in[e][m++] = b.xb[t];
                    }
                }
            }
        }
        float[][][] gates = new float[experts][][];
        float[][][] up = new float[experts][][];
        float[][][] down = new float[experts][][];
        for (int e = 0, start = 0; e < experts; start += count[e], e++) {
            gates[e] = Arrays.copyOfRange(b.expertGate, start, start + count[e]);
            up[e] = Arrays.copyOfRange(b.expertUp, start, start + count[e]);
            down[e] = Arrays.copyOfRange(b.expertDown, start, start + count[e]);
        }
        WeightMatrix[] w1 = w.experts(TensorRole.FFN_GATE_EXPS, l);
        WeightMatrix[] w2 = w.experts(TensorRole.FFN_DOWN_EXPS, l);
        WeightMatrix[] w3 = w.experts(TensorRole.FFN_UP_EXPS, l);
        DotOrder[] order = order(TensorRole.FFN_GATE_SHEXP, l);
        WeightMatrix.Products products = WeightMatrix.Products.local();
        for (int e = 0; e < experts; e++) {
            products.add(w1[e], in[e], gates[e], count[e], b.decodeOrder).add(w3[e], in[e], up[e], count[e], b.decodeOrder);
        }
        if (shared) {
            products.add(w.matrix(TensorRole.FFN_GATE_SHEXP, l), b.xb, b.hb, n, order)
                    .add(w.matrix(TensorRole.FFN_UP_SHEXP, l), b.xb, b.hb2, n, order);
        }
        products.run();
        float[] gateBias = w.vector(TensorRole.FFN_GATE_EXPS_BIAS, l);
        float[] upBias = w.vector(TensorRole.FFN_UP_EXPS_BIAS, l);
        float[] downBias = w.vector(TensorRole.FFN_DOWN_EXPS_BIAS, l);
        products = WeightMatrix.Products.local();
        for (int e = 0; e < experts; e++) {
            int width = w1[e].rows();
            for (int i = 0; i < count[e]; i++) {
                addRow(up[e][i], upBias, e, width);
                addRow(gates[e][i], gateBias, e, width);
                if (glu == Glu.SWIGLU_OAI) {
                    CpuMath.swigluOai(gates[e][i], up[e][i], width, OAI_ALPHA, OAI_LIMIT);
                } else {
                    Kernels.get().swiglu(gates[e][i], up[e][i], width);
                }
            }
            products.add(w2[e], gates[e], down[e], count[e], b.decodeOrder);
        }
        if (shared) {
            for (int t = 0; t < n; t++) {
                Kernels.get().swiglu(b.hb[t], b.hb2[t], c.sharedExpertDim());
            }
            products.add(w.matrix(TensorRole.FFN_DOWN_SHEXP, l), b.hb, b.ffnOut, n, order);
        }
        products.run();
        for (int e = 0; e < experts; e++) {
            for (int i = 0; i < count[e]; i++) {
                float weight = b.chosenWeights[tokens[e][i]][slots[e][i]];
                float[] y = down[e][i];
                addRow(y, downBias, e, c.dim());
                float[] weighted = b.expertOut[tokens[e][i]][slots[e][i]];
                for (int d = 0; d < weighted.length; d++) {
                    weighted[d] = y[d] * weight;
                }
            }
        }
        for (int t = 0; t < n; t++) {
            System.arraycopy(b.expertOut[t][0], 0, b.xb2[t], 0, c.dim());
            for (int j = 1; j < k; j++) {
                add(b.xb2[t], b.expertOut[t][j]);
            }
        }
    }

    /**
     * llama.cpp's sigmoid here is silu(z) / z, z a one-row F32 product (vec_dot order); it is NaN at
     * z = 0, where this takes the limit 1/2.
     */
    @Override
    public void addGated(Act acc, Act d, TensorRole gate, int l) {
        float[][] x = a(acc);
        float[][] y = a(d);
        float[] g = w.vector(gate, l);
        for (int t = 0; t < step.n; t++) {
            float z = CpuMath.dotF32(g, 0, b.xb[t], 0, c.dim());
            float s = z == 0f ? 0.5f : CpuMath.silu(z) / z;
            float[] row = y[t];
            for (int i = 0; i < row.length; i++) {
                row[i] *= s;
            }
            add(x[t], row);
        }
    }

    @Override
    public void logits(float scale) {
        float[] norm = w.vector(TensorRole.OUTPUT_NORM, -1);
        float[][] rows = new float[step.logitRows.length][];
        for (int i = 0; i < rows.length; i++) {
            rmsnorm(b.xb[i], b.x[step.logitRows[i]], 0, norm, c.dim());
            rows[i] = step.logits[i] = new float[c.vocabSize()];
        }
        w.matrix(TensorRole.OUTPUT, -1).matmul(b.xb, rows, rows.length, b.decodeOrder);
        if (scale != 1f) {
            for (float[] row : rows) {
                for (int i = 0; i < row.length; i++) {
                    row[i] *= scale;
                }
            }
        }
    }

    /**
     * cos and sin of pos * base^(-2i/d), computed as ggml does (float, theta multiplied up per pair,
     * glibc's powf/cosf/sinf); with YaRN as ggml's {@code rope_yarn} ({@link YarnRope}).
     */
    private void ropeAngles(int pos, float[] cos, float[] sin) {
        float thetaScale = Libm.powf(c.ropeBase(), -2.0f / c.ropeDims());
        float theta = pos;
        for (int i = 0; i < cos.length; i++) {
            if (yarn != null) {
                yarn.angle(theta, i, cos, sin);
            } else {
                cos[i] = Libm.cosf(theta);
                sin[i] = Libm.sinf(theta);
            }
            theta *= thetaScale;
        }
    }

    /** Rotates the ropeDims dimensions from {@code offset} of each head ({@code stride} apart) of {@code vec}; the rest pass through. */
    private void rope(float[] vec, int nHeads, int stride, int offset, float[] cos, float[] sin) {
        int half = c.ropeDims() / 2;
        boolean adjacent = c.ropeType() == ModelConfig.RopeType.NORM;
        for (int h = 0; h < nHeads; h++) {
            int base = h * stride + offset;
            for (int i = 0; i < half; i++) {
                int x0i = adjacent ? base + 2 * i : base + i;
                int x1i = adjacent ? x0i + 1 : base + i + half;
                float x0 = vec[x0i];
                float x1 = vec[x1i];
                // GCC compiles ggml's x0*cos - x1*sin and x0*sin + x1*cos as one fma each, the
                // second product rounded first
                vec[x0i] = Math.fma(x0, cos[i], -(x1 * sin[i]));
                vec[x1i] = Math.fma(x0, sin[i], x1 * cos[i]);
            }
        }
    }

    /** out[off..off+n) = in[off..off+n) * (1 / sqrt(mean of squares + eps)) * weight; the squares summed in double, as ggml. */
    private void rmsnorm(float[] out, float[] in, int off, float[] weight, int n) {
        double ss = 0;
        for (int i = 0; i < n; i++) {
            ss += in[off + i] * in[off + i];
        }
        float mean = (float) (ss / n);
        float scale = 1f / (float) Math.sqrt(mean + c.rmsEps());
        for (int i = 0; i < n; i++) {
            out[off + i] = in[off + i] * scale * weight[i];
        }
    }

    /** acc[0..width) += row e of {@code bias} (rows of width); nothing when bias is null (ggml_add_id). */
    private static void addRow(float[] acc, float[] bias, int e, int width) {
        if (bias != null) {
            for (int i = 0; i < width; i++) {
                acc[i] += bias[e * width + i];
            }
        }
    }

    private static void add(float[] acc, float[] d) {
        for (int i = 0; i < d.length; i++) {
            acc[i] += d[i];
        }
    }
}
