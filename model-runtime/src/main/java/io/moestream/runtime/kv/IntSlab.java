package io.moestream.runtime.kv;

import io.moestream.runtime.kernel.Kernels;

import java.nio.ByteBuffer;

/**
 * KIVI int8/int4. Keys: per channel, groups of G tokens: {@code kScale/kMin[g * headDim + c]}.
 * Values: per token, groups of G channels: {@code vScale/vMin[t * (headDim / G) + g]}. Codes are
 * token-major {@code [t][c]}; int4 packs channel 2j in the low and 2j+1 in the high nibble.
 * Serialized: kScale, kMin, kCodes, vScale, vMin, vCodes (f16 as u16 LE, codes as bytes).
 *
 * <p>Latent ({@link KvShape#latent()}): keys only; the value of token t, channel c is its dequantized
 * key {@code kMin + kScale * code} (per-channel groups), and the V arrays are null. G need not
 * divide the head dim then.
 */
final class IntSlab extends HeadSlab {
    final boolean int4;
    final int group;
    final int tokens;
    final short[] kScale;
    final short[] kMin;
    /**
     * Key codes: int4 as serialized (position-major, two channels per byte); int8 channel-major
     * in memory ({@code c * tokens + t}), so that the scores of consecutive positions are
     * vector lanes ({@link Kernels#scoresInt8}), position-major when written.
     */
    final byte[] kCodes;
    /** Value scales, mins and codes; null when latent. */
    final short[] vScale;
    final short[] vMin;
    final byte[] vCodes;

    IntSlab(KvCodec codec, int tokens, int headDim, boolean latent) {
        super(headDim);
        this.int4 = codec.kind() == KvCodec.Kind.INT4;
        this.group = codec.groupSize();
        this.tokens = tokens;
        int n = tokens * headDim;
        kScale = new short[tokens / group * headDim];
        kMin = new short[kScale.length];
        kCodes = new byte[int4 ? n / 2 : n];
        vScale = latent ? null : new short[tokens * (headDim / group)];
        vMin = latent ? null : new short[vScale.length];
        vCodes = latent ? null : new byte[kCodes.length];
    }

    boolean latent() {
        return vCodes == null;
    }

    static IntSlab of(F32Slab s, KvCodec codec) {
        int hd = s.headDim;
        IntSlab q = new IntSlab(codec, s.tokens, hd, s.latent());
        int g = q.group;
        int qmax = codec.qmax();
        // keys: per channel c, tokens [gi*g, gi*g+g)
        for (int gi = 0; gi < s.tokens / g; gi++) {
            for (int c = 0; c < hd; c++) {
                q.quantizeGroup(s.k, gi * g * hd + c, hd, q.kCodes, q.kMin, q.kScale, gi * hd + c, qmax, !q.int4);
            }
        }
        if (q.latent()) {
            return q;
        }
        // values: per token t, channels [gi*g, gi*g+g)
        int gpt = hd / g;
        for (int t = 0; t < s.tokens; t++) {
            for (int gi = 0; gi < gpt; gi++) {
                q.quantizeGroup(s.v, t * hd + gi * g, 1, q.vCodes, q.vMin, q.vScale, t * gpt + gi, qmax, false);
            }
        }
        return q;
    }

    /**
     * Quantizes the group of {@code group} values {@code x[first + j * stride]}: min and scale
     * (rounded to F16 down and up, so every code fits) at {@code slot} of {@code mins} / {@code scales},
     * the codes at the values' own indices.
     */
    private void quantizeGroup(float[] x, int first, int stride, byte[] codes, short[] mins, short[] scales, int slot,
            int qmax, boolean channelMajor) {
        int end = first + group * stride;
        float min = Float.POSITIVE_INFINITY;
        float max = Float.NEGATIVE_INFINITY;
        for (int i = first; i < end; i += stride) {
            min = Math.min(min, x[i]);
            max = Math.max(max, x[i]);
        }
        short m16 = Half.floor(min);
        float m = Half.toFloat(m16);
        short s16 = Half.ceilPositive((max - m) / qmax);
        float sc = Half.toFloat(s16);
        checkFinite(m, sc, min, max);
        mins[slot] = m16;
        scales[slot] = s16;
        float inv = sc == 0 ? 0 : 1f / sc;
        for (int i = first; i < end; i += stride) {
            setCode(codes, channelMajor ? keyIndex(i) : i, code(x[i], m, sc, inv, qmax));
        }
    }

    private static void checkFinite(float m, float sc, float min, float max) {
        if (!Float.isFinite(m) || !Float.isFinite(sc)) {
            throw new IllegalArgumentException("KV group range [" + min + ", " + max
                    + "] is not representable with float16 scale/min (|x| must stay below 65504)");
        }
    }

    private static int code(float x, float m, float sc, float inv, int qmax) {
        if (sc == 0) {
            return 0;
        }
        int c = Math.round((x - m) * inv);
        // correct the reciprocal's rounding so the code is the nearest one
        if (c < qmax && Math.abs(x - (m + (c + 1) * sc)) < Math.abs(x - (m + c * sc))) {
            c++;
        } else if (c > 0 && Math.abs(x - (m + (c - 1) * sc)) < Math.abs(x - (m + c * sc))) {
            c--;
        }
        return Math.max(0, Math.min(qmax, c));
    }

    private void setCode(byte[] codes, int i, int c) {
        if (int4) {
            int b = codes[i >> 1] & 0xFF;
            b = (i & 1) == 0 ? (b & 0xF0) | c : (b & 0x0F) | (c << 4);
            codes[i >> 1] = (byte) b;
        } else {
            codes[i] = (byte) c;
        }
    }

    /** Where the int8 key code of element {@code i = t * headDim + c} lives in {@link #kCodes}. */
    private int keyIndex(int i) {
        return i % headDim * tokens + i / headDim;
    }

    private int codeAt(byte[] codes, int i) {
        if (int4) {
            int b = codes[i >> 1];
            return (i & 1) == 0 ? b & 0xF : (b >> 4) & 0xF;
        }
        return codes[i] & 0xFF;
    }

    @Override
    public int tokens() {
        return tokens;
    }

    @Override
    public void scores(float[] q, int qOff, int from, int to, float scale, float[] att, int base, float[] qs) {
        int hd = headDim;
        int t = from;
        while (t < to) {
            int gi = t / group;
            int end = Math.min(to, gi * group + group);
            // k_tc = min_gc + scale_gc * code_tc  =>  q.k_t = sum_c q_c min_gc + sum_c (q_c scale_gc) code_tc
            float bias = 0;
            for (int c = 0; c < hd; c++) {
                float qc = q[qOff + c];
                qs[c] = qc * Half.toFloat(kScale[gi * hd + c]);
                bias += qc * Half.toFloat(kMin[gi * hd + c]);
            }
            if (!int4) {
                Kernels.get().scoresInt8(kCodes, tokens, hd, qs, t, end, bias, scale, att, base);
                t = end;
                continue;
            }
            // int4: four positions' sums side by side (each still added up channel by channel,
            // in order), so that their dependency chains overlap
            for (; t + 4 <= end; t += 4) {
                float d0 = 0, d1 = 0, d2 = 0, d3 = 0;
                int b0 = (t * hd) >> 1;
                int b1 = b0 + (hd >> 1);
                int b2 = b1 + (hd >> 1);
                int b3 = b2 + (hd >> 1);
                for (int c = 0; c < hd; c += 2) {
                    float w0 = qs[c];
                    float w1 = qs[c + 1];
                    int x0 = kCodes[b0 + (c >> 1)];
                    int x1 = kCodes[b1 + (c >> 1)];
                    int x2 = kCodes[b2 + (c >> 1)];
                    int x3 = kCodes[b3 + (c >> 1)];
                    d0 += w0 * (x0 & 0xF) + w1 * ((x0 >> 4) & 0xF);
                    d1 += w0 * (x1 & 0xF) + w1 * ((x1 >> 4) & 0xF);
                    d2 += w0 * (x2 & 0xF) + w1 * ((x2 >> 4) & 0xF);
                    d3 += w0 * (x3 & 0xF) + w1 * ((x3 >> 4) & 0xF);
                }
                att[base + t] = (bias + d0) * scale;
                att[base + t + 1] = (bias + d1) * scale;
                att[base + t + 2] = (bias + d2) * scale;
                att[base + t + 3] = (bias + d3) * scale;
            }
            for (; t < end; t++) {
                float dot = 0;
                int bo = (t * hd) >> 1;
                for (int c = 0; c < hd; c += 2) {
                    int b = kCodes[bo + (c >> 1)];
                    dot += qs[c] * (b & 0xF) + qs[c + 1] * ((b >> 4) & 0xF);
                }
                att[base + t] = (bias + dot) * scale;
            }
        }
    }

    @Override
    public void accumulate(float[] p, int base, int from, int to, float[] acc, int lanes) {
        if (latent()) {
            accumulateKeys(p, base, from, to, acc, lanes);
            return;
        }
        int hd = headDim;
        int gpt = hd / group;
        if (!int4) {
            // one call per position: 1.1-1.5x one call for the whole span, for the scalar and the
            // Vector API kernels alike (C2 compiles the span loop worse; measured, not understood)
            Kernels k = Kernels.get();
            for (int t = from; t < to; t++) {
                k.accumulateInt8(vCodes, hd, group, vScale, vMin, p, base, t, t + 1, acc, lanes);
            }
            return;
        }
        for (int t = from; t < to; t++) {
            float a = p[base + t];
            if (a == 0) {
                continue;
            }
            int off = t * hd;
            int row = ((base + t) % lanes) * hd;
            for (int gi = 0; gi < gpt; gi++) {
                float sc = Half.toFloat(vScale[t * gpt + gi]);
                float m = Half.toFloat(vMin[t * gpt + gi]);
                for (int c = gi * group; c < gi * group + group; c++) {
                    acc[row + c] = Math.fma(m + sc * codeAt(vCodes, off + c), a, acc[row + c]);
                }
            }
        }
    }

    /**
     * Latent value sums: token t's value is its dequantized key row, {@code min_gc + scale_gc * code_tc}
     * per channel (key group g of t), one fma per element as for the other codecs.
     */
    private void accumulateKeys(float[] p, int base, int from, int to, float[] acc, int lanes) {
        int hd = headDim;
        for (int t = from; t < to; t++) {
            float a = p[base + t];
            if (a == 0) {
                continue;
            }
            int gi = t / group;
            int row = ((base + t) % lanes) * hd;
            for (int c = 0; c < hd; c++) {
                float v = Half.toFloat(kMin[gi * hd + c])
                        + Half.toFloat(kScale[gi * hd + c]) * codeAt(kCodes, int4 ? t * hd + c : c * tokens + t);
                acc[row + c] = Math.fma(v, a, acc[row + c]);
            }
        }
    }

    /** Whether {@link #accumulateColumns} applies: a latent int8 slab, whose codes are channel-major. */
    boolean columnar() {
        return latent() && !int4;
    }

    /**
     * {@link #accumulate} into a channel-major accumulator, {@code acc[c * lanes + lane]} (the same
     * floats, transposed): the codes of a channel are consecutive, so positions go in vector lanes
     * ({@link Kernels#accumulateInt8Columns}). Only when {@link #columnar}.
     */
    void accumulateColumns(float[] p, int base, int from, int to, float[] acc, int lanes) {
        int hd = headDim;
        float[] mins = new float[hd];
        float[] scales = new float[hd];
        for (int t = from; t < to; ) {
            int gi = t / group;
            int end = Math.min(to, gi * group + group);
            for (int c = 0; c < hd; c++) {
                mins[c] = Half.toFloat(kMin[gi * hd + c]);
                scales[c] = Half.toFloat(kScale[gi * hd + c]);
            }
            Kernels.get().accumulateInt8Columns(kCodes, tokens, hd, mins, scales, p, base, t, end, acc, lanes);
            t = end;
        }
    }

    @Override
    void dequantize(float[] kOut, int kOff, float[] vOut, int vOff) {
        int hd = headDim;
        int gpt = hd / group;
        for (int t = 0; t < tokens; t++) {
            int gi = t / group;
            for (int c = 0; c < hd; c++) {
                kOut[kOff + t * hd + c] = Half.toFloat(kMin[gi * hd + c])
                        + Half.toFloat(kScale[gi * hd + c]) * codeAt(kCodes, int4 ? t * hd + c : c * tokens + t);
                if (latent()) {
                    vOut[vOff + t * hd + c] = kOut[kOff + t * hd + c];
                    continue;
                }
                int vg = t * gpt + c / group;
                vOut[vOff + t * hd + c] = Half.toFloat(vMin[vg]) + Half.toFloat(vScale[vg]) * codeAt(vCodes, t * hd + c);
            }
        }
    }

    @Override
    public long bytes() {
        long keys = 4L * kScale.length + kCodes.length;
        return latent() ? keys : keys + 4L * vScale.length + vCodes.length;
    }

    @Override
    public void write(ByteBuffer out) {
        for (short s : kScale) {
            out.putShort(s);
        }
        for (short s : kMin) {
            out.putShort(s);
        }
        if (int4) {
            out.put(kCodes);
        } else {
            for (int t = 0; t < tokens; t++) {
                for (int c = 0; c < headDim; c++) {
                    out.put(kCodes[c * tokens + t]);
                }
            }
        }
        if (latent()) {
            return;
        }
        for (short s : vScale) {
            out.putShort(s);
        }
        for (short s : vMin) {
            out.putShort(s);
        }
        out.put(vCodes);
    }

    static IntSlab read(ByteBuffer in, KvCodec codec, int tokens, int headDim, boolean latent) {
        IntSlab s = new IntSlab(codec, tokens, headDim, latent);
        for (int i = 0; i < s.kScale.length; i++) {
            s.kScale[i] = in.getShort();
        }
        for (int i = 0; i < s.kMin.length; i++) {
            s.kMin[i] = in.getShort();
        }
        if (s.int4) {
            in.get(s.kCodes);
        } else {
            for (int t = 0; t < tokens; t++) {
                for (int c = 0; c < headDim; c++) {
                    s.kCodes[c * tokens + t] = in.get();
                }
            }
        }
        if (latent) {
            return s;
        }
        for (int i = 0; i < s.vScale.length; i++) {
            s.vScale[i] = in.getShort();
        }
        for (int i = 0; i < s.vMin.length; i++) {
            s.vMin[i] = in.getShort();
        }
        in.get(s.vCodes);
        return s;
    }
}
