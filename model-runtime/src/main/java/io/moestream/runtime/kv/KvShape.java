package io.moestream.runtime.kv;

import io.moestream.runtime.model.Model;
import io.moestream.runtime.model.ModelConfig;

import java.nio.charset.StandardCharsets;

/**
 * The model shape a KV cache belongs to: layers, KV heads, head width, and a 64-bit fingerprint of the
 * whole model configuration and name (so a cache is never restored into another model).
 *
 * @param layers      transformer layers
 * @param kvHeads     key/value heads per layer
 * @param headDim     width of one head
 * @param fingerprint FNV-1a 64 of the model's name and {@link ModelConfig}; any value for hand-made shapes
 */
public record KvShape(int layers, int kvHeads, int headDim, long fingerprint) {

    public KvShape {
        if (layers <= 0 || kvHeads <= 0 || headDim <= 0 || layers > 0xFFFF || kvHeads > 0xFFFF || headDim > 0xFFFF) {
            throw new IllegalArgumentException("KV shape out of range: layers " + layers + ", kvHeads " + kvHeads
                    + ", headDim " + headDim + " (each 1..65535)");
        }
    }

    public static KvShape of(Model model) {
        return model.kvShape();
    }

    /** The shape of a model named {@code name} with configuration {@code c} (what {@link Model#kvShape()} holds). */
    public static KvShape of(String name, ModelConfig c) {
        return new KvShape(c.layers(), c.kvHeads(), c.headDim(), fingerprint(name + "|" + c));
    }

    /** Floats of K (or V) per position and layer. */
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
