package io.moestream.runtime.kv;

import io.moestream.runtime.kernel.CpuMath;
import io.moestream.runtime.kernel.Kernels;

import java.nio.ByteBuffer;

/**
 * The keys and values of one (layer, KV head) for the tokens of one block, in one codec. The
 * attention kernels read it in place: {@link #scores} and {@link #accumulate} dequantize inside the
 * loop, never materialising a float copy of a quantized block.
 *
 * <p>Public for the CPU backend ({@code backend.cpu}), which keeps its paged KV pool as slabs so that
 * its compression and attention are these, not a copy: {@link F32Slab#open} is a backend's writable
 * float32 block, {@link #seal} compresses it, {@link #write}/{@link #readSealed} are the bytes of one slab
 * in a block (docs/kv-cache.md, "Block layout").
 */
public abstract class HeadSlab {

    final int headDim;

    HeadSlab(int headDim) {
        this.headDim = headDim;
    }

    /** Tokens held. */
    public abstract int tokens();

    /**
     * {@code att[base + t] = (q . k_t) * scale} for block-relative tokens {@code from <= t < to}.
     * {@code scratch} holds at least {@code max(headDim, 64)} floats.
     */
    public abstract void scores(float[] q, int qOff, int from, int to, float scale, float[] att, int base, float[] scratch);

    /**
     * {@code acc[((base + t) % lanes) * headDim + i] = fma(v_t[i], p[base + t], ...)} for
     * {@code from <= t < to}: the value sums of attention with position {@code base + t} in lane
     * {@code (base + t) % lanes}, as ggml's vector dot products place it (lane-major, so each
     * position updates one contiguous row).
     */
    public abstract void accumulate(float[] p, int base, int from, int to, float[] acc, int lanes);

    /** Writes the dequantized keys and values of all tokens, {@code [t][headDim]}, at the given offsets. */
    abstract void dequantize(float[] k, int kOff, float[] v, int vOff);

    /** Serialized bytes ({@link #write}). */
    public abstract long bytes();

    /** Appends the slab's K section, then its V section, in its codec's layout (little-endian buffer). */
    public abstract void write(ByteBuffer out);

    /** Bytes of K+V of one head for {@code tokens} tokens in {@code codec} (tail blocks use F32). */
    static long bytes(KvCodec codec, int tokens, int headDim) {
        return 2 * codec.sectionBytes(tokens, headDim);
    }

    /** Reads a sealed slab of {@code tokens} tokens written by {@link #write} (little-endian buffer). */
    public static HeadSlab readSealed(ByteBuffer in, KvCodec codec, int tokens, int headDim) {
        return read(in, codec, tokens, headDim, tokens);
    }

    static HeadSlab read(ByteBuffer in, KvCodec codec, int tokens, int headDim, int capacity) {
        switch (codec.kind()) {
            case F32:
                return F32Slab.read(in, tokens, headDim, capacity);
            case F16:
                return F16Slab.read(in, tokens, headDim);
            default:
                return IntSlab.read(in, codec, tokens, headDim);
        }
    }

    /** Compresses a full float slab with {@code codec} (deterministic: the same floats give the same bytes). */
    public static HeadSlab seal(F32Slab s, KvCodec codec) {
        switch (codec.kind()) {
            case F32:
                return s.trimmedCopy();
            case F16:
                return F16Slab.of(s);
            default:
                return IntSlab.of(s, codec);
        }
    }

    // ---------------------------------------------------------------------------------------------

    /** Plain float32; also the writable tail of the cache (capacity B, {@code tokens} filled). */
    public static final class F32Slab extends HeadSlab {
        final float[] k;
        final float[] v;
        int tokens;

        F32Slab(int headDim, int capacity) {
            super(headDim);
            k = new float[capacity * headDim];
            v = new float[capacity * headDim];
        }

        /**
         * A writable slab of {@code blockTokens} positions that counts all of them as filled (a
         * backend's open block: positions are written in any order and read by explicit ranges).
         */
        public static F32Slab open(int headDim, int blockTokens) {
            F32Slab s = new F32Slab(headDim, blockTokens);
            s.tokens = blockTokens;
            return s;
        }

        F32Slab trimmedCopy() {
            F32Slab c = new F32Slab(headDim, tokens);
            System.arraycopy(k, 0, c.k, 0, tokens * headDim);
            System.arraycopy(v, 0, c.v, 0, tokens * headDim);
            c.tokens = tokens;
            return c;
        }

        F32Slab copy(int capacity) {
            F32Slab c = new F32Slab(headDim, capacity);
            System.arraycopy(k, 0, c.k, 0, tokens * headDim);
            System.arraycopy(v, 0, c.v, 0, tokens * headDim);
            c.tokens = tokens;
            return c;
        }

        /** Stores token {@code t}'s key and value ({@code headDim} floats each). */
        public void put(int t, float[] key, int kOff, float[] value, int vOff) {
            System.arraycopy(key, kOff, k, t * headDim, headDim);
            System.arraycopy(value, vOff, v, t * headDim, headDim);
            tokens = Math.max(tokens, t + 1);
        }

        @Override
        public int tokens() {
            return tokens;
        }

        @Override
        public void scores(float[] q, int qOff, int from, int to, float scale, float[] att, int base, float[] scratch) {
            Kernels.get().scoresF32(k, headDim, from, to, q, qOff, scale, att, base);
        }

        @Override
        public void accumulate(float[] p, int base, int from, int to, float[] acc, int lanes) {
            Kernels.get().accumulateF32(v, headDim, from, to, p, base, acc, lanes);
        }

        @Override
        void dequantize(float[] kOut, int kOff, float[] vOut, int vOff) {
            System.arraycopy(k, 0, kOut, kOff, tokens * headDim);
            System.arraycopy(v, 0, vOut, vOff, tokens * headDim);
        }

        @Override
        public long bytes() {
            return 8L * tokens * headDim;
        }

        @Override
        public void write(ByteBuffer out) {
            int n = tokens * headDim;
            for (int i = 0; i < n; i++) {
                out.putFloat(k[i]);
            }
            for (int i = 0; i < n; i++) {
                out.putFloat(v[i]);
            }
        }

        /** Writes K then V for all {@code capacity} positions (unfilled ones as written, zero when never written). */
        void writeCapacity(ByteBuffer out) {
            for (float x : k) {
                out.putFloat(x);
            }
            for (float x : v) {
                out.putFloat(x);
            }
        }

        static F32Slab read(ByteBuffer in, int tokens, int headDim, int capacity) {
            F32Slab s = new F32Slab(headDim, Math.max(tokens, capacity));
            int n = tokens * headDim;
            for (int i = 0; i < n; i++) {
                s.k[i] = in.getFloat();
            }
            for (int i = 0; i < n; i++) {
                s.v[i] = in.getFloat();
            }
            s.tokens = tokens;
            return s;
        }
    }

    // ---------------------------------------------------------------------------------------------

    /** float16 elements. */
    static final class F16Slab extends HeadSlab {
        final short[] k;
        final short[] v;
        final int tokens;

        F16Slab(int headDim, int tokens) {
            super(headDim);
            this.tokens = tokens;
            k = new short[tokens * headDim];
            v = new short[tokens * headDim];
        }

        static F16Slab of(F32Slab s) {
            F16Slab h = new F16Slab(s.headDim, s.tokens);
            for (int i = 0; i < h.k.length; i++) {
                h.k[i] = Half.nearest(s.k[i]);
                h.v[i] = Half.nearest(s.v[i]);
            }
            return h;
        }

        @Override
        public int tokens() {
            return tokens;
        }

        @Override
        public void scores(float[] q, int qOff, int from, int to, float scale, float[] att, int base, float[] scratch) {
            for (int t = from; t < to; t++) {
                float score = 0;
                int off = t * headDim;
                for (int i = 0; i < headDim; i++) {
                    score += q[qOff + i] * Half.toFloat(k[off + i]);
                }
                att[base + t] = score * scale;
            }
        }

        @Override
        public void accumulate(float[] p, int base, int from, int to, float[] acc, int lanes) {
            for (int t = from; t < to; t++) {
                float a = p[base + t];
                int off = t * headDim;
                int row = ((base + t) % lanes) * headDim;
                for (int i = 0; i < headDim; i++) {
                    acc[row + i] = Math.fma(Half.toFloat(v[off + i]), a, acc[row + i]);
                }
            }
        }

        @Override
        void dequantize(float[] kOut, int kOff, float[] vOut, int vOff) {
            for (int i = 0; i < k.length; i++) {
                kOut[kOff + i] = Half.toFloat(k[i]);
                vOut[vOff + i] = Half.toFloat(v[i]);
            }
        }

        @Override
        public long bytes() {
            return 4L * tokens * headDim;
        }

        @Override
        public void write(ByteBuffer out) {
            for (short s : k) {
                out.putShort(s);
            }
            for (short s : v) {
                out.putShort(s);
            }
        }

        static F16Slab read(ByteBuffer in, int tokens, int headDim) {
            F16Slab s = new F16Slab(headDim, tokens);
            for (int i = 0; i < s.k.length; i++) {
                s.k[i] = in.getShort();
            }
            for (int i = 0; i < s.v.length; i++) {
                s.v[i] = in.getShort();
            }
            return s;
        }
    }

    // ---------------------------------------------------------------------------------------------

    /**
     * KIVI int8/int4. Keys: per channel, groups of G tokens: {@code kScale/kMin[g * headDim + c]}.
     * Values: per token, groups of G channels: {@code vScale/vMin[t * (headDim / G) + g]}. Codes are
     * token-major {@code [t][c]}; int4 packs channel 2j in the low and 2j+1 in the high nibble.
     * Serialized: kScale, kMin, kCodes, vScale, vMin, vCodes (f16 as u16 LE, codes as bytes).
     */
    static final class IntSlab extends HeadSlab {
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
        final short[] vScale;
        final short[] vMin;
        final byte[] vCodes;

        IntSlab(KvCodec codec, int tokens, int headDim) {
            super(headDim);
            this.int4 = codec.kind() == KvCodec.Kind.INT4;
            this.group = codec.groupSize();
            this.tokens = tokens;
            int n = tokens * headDim;
            kScale = new short[tokens / group * headDim];
            kMin = new short[kScale.length];
            vScale = new short[tokens * (headDim / group)];
            vMin = new short[vScale.length];
            kCodes = new byte[int4 ? n / 2 : n];
            vCodes = new byte[kCodes.length];
        }

        static IntSlab of(F32Slab s, KvCodec codec) {
            int hd = s.headDim;
            IntSlab q = new IntSlab(codec, s.tokens, hd);
            int g = q.group;
            int qmax = codec.qmax();
            // keys: per channel c, tokens [gi*g, gi*g+g)
            for (int gi = 0; gi < s.tokens / g; gi++) {
                for (int c = 0; c < hd; c++) {
                    q.quantizeGroup(s.k, gi * g * hd + c, hd, q.kCodes, q.kMin, q.kScale, gi * hd + c, qmax, !q.int4);
                }
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

        @Override
        void dequantize(float[] kOut, int kOff, float[] vOut, int vOff) {
            int hd = headDim;
            int gpt = hd / group;
            for (int t = 0; t < tokens; t++) {
                int gi = t / group;
                for (int c = 0; c < hd; c++) {
                    kOut[kOff + t * hd + c] = Half.toFloat(kMin[gi * hd + c])
                            + Half.toFloat(kScale[gi * hd + c]) * codeAt(kCodes, int4 ? t * hd + c : c * tokens + t);
                    int vg = t * gpt + c / group;
                    vOut[vOff + t * hd + c] = Half.toFloat(vMin[vg]) + Half.toFloat(vScale[vg]) * codeAt(vCodes, t * hd + c);
                }
            }
        }

        @Override
        public long bytes() {
            return 4L * (kScale.length + vScale.length) + kCodes.length + vCodes.length;
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
            for (short s : vScale) {
                out.putShort(s);
            }
            for (short s : vMin) {
                out.putShort(s);
            }
            out.put(vCodes);
        }

        static IntSlab read(ByteBuffer in, KvCodec codec, int tokens, int headDim) {
            IntSlab s = new IntSlab(codec, tokens, headDim);
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
}
