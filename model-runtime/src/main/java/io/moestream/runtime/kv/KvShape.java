package io.moestream.runtime.kv;

import io.moestream.runtime.model.Model;
import io.moestream.runtime.model.ModelConfig;

import java.nio.charset.StandardCharsets;

/**
 * The model shape a KV cache belongs to: layers, KV heads, head width, a 64-bit fingerprint of the
 * whole model configuration and name (so a cache is never restored into another model), and how
 * attention reads the cache ({@link Attention}: whether the key row is also the value, which layers
 * slide).
 *
 * @param layers      transformer layers
 * @param kvHeads     key/value heads per layer
 * @param headDim     width of one head
 * @param fingerprint FNV-1a 64 of the model's name and {@link ModelConfig}; any value for hand-made shapes
 * @param attention   latent rows and sliding windows ({@link Attention#PLAIN}: neither)
 */
public record KvShape(int layers, int kvHeads, int headDim, long fingerprint, Attention attention) {

    /**
     * How the model's attention reads the cache.
     *
     * @param latent whether each position holds one row that is both its key and its value (MLA's
     *               latent {@code [c_kv ‖ k_pe]}: the value sums read the key row, the model uses their
     *               first {@code kv_lora_rank} channels); blocks then have no V section
     * @param window the sliding window of the sliding layers (0: no layer slides): a query at p sees
     *               positions {@code p - window + 1 .. p}, so older blocks of those layers are dropped
     * @param period layer l slides when {@code l % period < period - 1} (llama.cpp's swa pattern, as
     *               {@link ModelConfig#isSlidingLayer}); 0 when no layer slides
     */
    public record Attention(boolean latent, int window, int period) {
        public static final Attention PLAIN = new Attention(false, 0, 0);

        public Attention {
            if (window < 0 || (window > 0 && (period < 1 || period > 0xFFFF)) || (window == 0 && period != 0)) {
                throw new IllegalArgumentException("sliding window " + window + " needs a period in 1..65535 (got " + period
                        + "), and no window a period of 0");
            }
        }

        /** Whether layer l attends over the last {@link #window} positions only. */
        public boolean slides(int l) {
            return window > 0 && l % period < period - 1;
        }

        /** Layer l's window, 0 for a layer that sees every position. */
        public int window(int l) {
            return slides(l) ? window : 0;
        }
    }

    public KvShape {
        if (layers <= 0 || kvHeads <= 0 || headDim <= 0 || layers > 0xFFFF || kvHeads > 0xFFFF || headDim > 0xFFFF) {
            throw new IllegalArgumentException("KV shape out of range: layers " + layers + ", kvHeads " + kvHeads
                    + ", headDim " + headDim + " (each 1..65535)");
        }
        if (attention == null) {
            throw new IllegalArgumentException("KV shape needs an attention description (Attention.PLAIN for none)");
        }
    }

    /** A shape whose K and V are separate and whose layers all see every position. */
    public KvShape(int layers, int kvHeads, int headDim, long fingerprint) {
        this(layers, kvHeads, headDim, fingerprint, Attention.PLAIN);
    }

    /** The shape of a model named {@code name} with configuration {@code c} (what {@link Model#kvShape()} holds). */
    public static KvShape of(String name, ModelConfig c) {
        ModelConfig.AttentionLayout a = c.attention();
        Attention attention = new Attention(c.mla() != null, a.window(), a.window() > 0 ? a.period() : 0);
        return new KvShape(c.layers(), c.kvHeads(), c.headDim(), fingerprint(name + "|" + c), attention);
    }

    /** Whether one row per position is key and value ({@link Attention#latent}). */
    public boolean latent() {
        return attention.latent();
    }

    /** Floats of K (or V) per position and layer, as written to the cache. */
    public int kvDim() {
        return kvHeads * headDim;
    }

    /** Number of (layer, KV head) pairs. */
    public int headCount() {
        return layers * kvHeads;
    }

    static long fingerprint(String s) {
        long h = 0xcbf29ce484222325L;
        for (byte b : s.getBytes(StandardCharsets.UTF_8)) {
            h ^= b & 0xFF;
            h *= 0x100000001b3L;
        }
        return h;
    }
}
