package io.moestream.runtime.kv;

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
 *
 * <p>A <em>latent</em> slab (an MLA cache, {@link KvShape#latent()}) holds one row per token that is
 * its key and its value: the value sums read the key data, and the bytes have no V section.
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

    /** Appends the slab's K section, then its V section (none when latent), in its codec's layout (little-endian buffer). */
    public abstract void write(ByteBuffer out);

    /** Bytes of K+V (latent: K only) of one head for {@code tokens} tokens in {@code codec} (tail blocks use F32). */
    static long bytes(KvCodec codec, int tokens, int headDim, boolean latent) {
        return (latent ? 1 : 2) * codec.sectionBytes(tokens, headDim);
    }

    /** Reads a sealed K+V slab of {@code tokens} tokens written by {@link #write} (little-endian buffer). */
    public static HeadSlab readSealed(ByteBuffer in, KvCodec codec, int tokens, int headDim) {
        return read(in, codec, tokens, headDim, tokens, false);
    }

    static HeadSlab read(ByteBuffer in, KvCodec codec, int tokens, int headDim, int capacity, boolean latent) {
        switch (codec.kind()) {
            case F32:
                return F32Slab.read(in, tokens, headDim, capacity, latent);
            case F16:
                return F16Slab.read(in, tokens, headDim, latent);
            default:
                return IntSlab.read(in, codec, tokens, headDim, latent);
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
        /** The values; the key array itself when latent. */
        final float[] v;
        int tokens;

        F32Slab(int headDim, int capacity, boolean latent) {
            super(headDim);
            k = new float[capacity * headDim];
            v = latent ? k : new float[capacity * headDim];
        }

        boolean latent() {
            return v == k;
        }

        /**
         * A writable slab of {@code blockTokens} positions that counts all of them as filled (a
         * backend's open block: positions are written in any order and read by explicit ranges).
         */
        public static F32Slab open(int headDim, int blockTokens) {
            F32Slab s = new F32Slab(headDim, blockTokens, false);
            s.tokens = blockTokens;
            return s;
        }

        F32Slab trimmedCopy() {
            return copy(tokens);
        }

        F32Slab copy(int capacity) {
            F32Slab c = new F32Slab(headDim, capacity, latent());
            System.arraycopy(k, 0, c.k, 0, tokens * headDim);
            if (!latent()) {
                System.arraycopy(v, 0, c.v, 0, tokens * headDim);
            }
            c.tokens = tokens;
            return c;
        }

        /** Stores token {@code t}'s key and value ({@code headDim} floats each; the value is ignored when latent). */
        public void put(int t, float[] key, int kOff, float[] value, int vOff) {
            System.arraycopy(key, kOff, k, t * headDim, headDim);
            if (!latent()) {
                System.arraycopy(value, vOff, v, t * headDim, headDim);
            }
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
            return (latent() ? 4L : 8L) * tokens * headDim;
        }

        @Override
        public void write(ByteBuffer out) {
            int n = tokens * headDim;
            for (int i = 0; i < n; i++) {
                out.putFloat(k[i]);
            }
            if (!latent()) {
                for (int i = 0; i < n; i++) {
                    out.putFloat(v[i]);
                }
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

        static F32Slab read(ByteBuffer in, int tokens, int headDim, int capacity, boolean latent) {
            F32Slab s = new F32Slab(headDim, Math.max(tokens, capacity), latent);
            int n = tokens * headDim;
            for (int i = 0; i < n; i++) {
                s.k[i] = in.getFloat();
            }
            if (!latent) {
                for (int i = 0; i < n; i++) {
                    s.v[i] = in.getFloat();
                }
            }
            s.tokens = tokens;
            return s;
        }
    }

    // ---------------------------------------------------------------------------------------------

    /** float16 elements. */
    static final class F16Slab extends HeadSlab {
        final short[] k;
        /** The values; the key array itself when latent. */
        final short[] v;
        final int tokens;

        F16Slab(int headDim, int tokens, boolean latent) {
            super(headDim);
            this.tokens = tokens;
            k = new short[tokens * headDim];
            v = latent ? k : new short[tokens * headDim];
        }

        static F16Slab of(F32Slab s) {
            F16Slab h = new F16Slab(s.headDim, s.tokens, s.latent());
            for (int i = 0; i < h.k.length; i++) {
                h.k[i] = Half.nearest(s.k[i]);
            }
            if (h.v != h.k) {
                for (int i = 0; i < h.v.length; i++) {
                    h.v[i] = Half.nearest(s.v[i]);
                }
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
            return (v == k ? 2L : 4L) * tokens * headDim;
        }

        @Override
        public void write(ByteBuffer out) {
            for (short s : k) {
                out.putShort(s);
            }
            if (v != k) {
                for (short s : v) {
                    out.putShort(s);
                }
            }
        }

        static F16Slab read(ByteBuffer in, int tokens, int headDim, boolean latent) {
            F16Slab s = new F16Slab(headDim, tokens, latent);
            for (int i = 0; i < s.k.length; i++) {
                s.k[i] = in.getShort();
            }
            if (!latent) {
                for (int i = 0; i < s.v.length; i++) {
                    s.v[i] = in.getShort();
                }
            }
            return s;
        }
    }
}
