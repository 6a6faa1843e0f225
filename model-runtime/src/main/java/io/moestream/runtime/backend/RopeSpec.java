package io.moestream.runtime.backend;

import io.moestream.runtime.model.ModelConfig;
import io.moestream.runtime.model.YarnRope;

/**
 * Rotary embedding parameters: the first {@code ropeDims} dims of each head are rotated (partial
 * rotary when {@code ropeDims < headDim}), paired as {@code type} says, with angle
 * {@code pos * base^(-2i/ropeDims)} for pair i, scaled by YaRN when {@code yarn} is not null.
 */
public record RopeSpec(int headDim, int ropeDims, ModelConfig.RopeType type, float base, YarnRope yarn) {

    /** Without YaRN. */
    public RopeSpec(int headDim, int ropeDims, ModelConfig.RopeType type, float base) {
        this(headDim, ropeDims, type, base, null);
    }

    public RopeSpec {
        if (ropeDims > headDim || ropeDims % 2 != 0 || ropeDims <= 0) {
            throw new IllegalArgumentException("ropeDims " + ropeDims + " must be even, positive and <= headDim " + headDim);
        }
    }

    /** {@code base^(-2/ropeDims)} in float, computed as the CPU engine does; pair i's angle is pos times this to the i. */
    public float thetaScale() {
        return (float) Math.pow(base, -2.0f / ropeDims);
    }

    public static RopeSpec of(ModelConfig c) {
        return new RopeSpec(c.headDim(), c.ropeDims(), c.ropeType(), c.ropeBase(), c.yarn() == null ? null : new YarnRope(c));
    }
}
