package io.moestream.runtime.model;

import io.moestream.runtime.kernel.Libm;

/**
 * ggml's {@code rope_yarn} for one model (float operations as ggml compiles them, glibc's
 * logf/cosf/sinf): pair i's angle {@code theta = theta_interp * (1 - ramp) + theta_extrap * ramp}
 * with {@code theta_interp = freqScale * theta_extrap} and {@code ramp} = 1 below the lower
 * correction dimension, 0 above the upper one, linear between (times extFactor); cos and sin are
 * multiplied by {@code attnFactor * (1 + 0.1 ln(1 / freqScale))}. The correction dimensions are
 * {@code ggml_rope_yarn_corr_dims}: {@code floor}/{@code ceil} of
 * {@code d ln(origContext / (beta 2 pi)) / (2 ln base)} for beta_fast / beta_slow, clamped to [0, d - 1].
 */
public final class YarnRope {

    private final float freqScale;
    private final float extFactor;
    private final float low;
    private final float high;
    private final float mscale;

    public YarnRope(ModelConfig c) {
        ModelConfig.Yarn y = c.yarn();
        int dims = c.ropeDims();
        this.freqScale = y.freqScale();
        this.extFactor = y.extFactor();
        this.low = Math.max(0f, (float) Math.floor(corrDim(dims, y.origContext(), y.betaFast(), c.ropeBase())));
        this.high = Math.min(dims - 1, (float) Math.ceil(corrDim(dims, y.origContext(), y.betaSlow(), c.ropeBase())));
        // GCC contracts 1.0f + 0.1f * logf(..) to one fma
        this.mscale = extFactor != 0f ? y.attnFactor() * Math.fma(0.1f, Libm.logf(1.0f / freqScale), 1.0f) : y.attnFactor();
    }

    private static float corrDim(int dims, int origContext, float beta, float base) {
        return dims * Libm.logf(origContext / (beta * 2 * (float) Math.PI)) / (2 * Libm.logf(base));
    }

    /** The scale of the interpolated angle ({@code 1 / rope.scaling.factor}). */
    public float freqScale() {
        return freqScale;
    }

    /** How much of the unscaled angle the ramp mixes in (0: none). */
    public float extFactor() {
        return extFactor;
    }

    /** The lower correction dimension (pairs below it keep the unscaled angle). */
    public float low() {
        return low;
    }

    /** The upper correction dimension (pairs above it take the interpolated angle). */
    public float high() {
        return high;
    }

    /** The factor on cos and sin. */
    public float mscale() {
        return mscale;
    }

    /** cos[pair] and sin[pair] of the angle whose unscaled value is {@code thetaExtrap}. */
    public void angle(float thetaExtrap, int pair, float[] cos, float[] sin) {
        float thetaInterp = freqScale * thetaExtrap;
        float theta = thetaInterp;
        if (extFactor != 0f) {
            float y = (pair - low) / Math.max(0.001f, high - low);
            float rampMix = (1 - Math.min(1f, Math.max(0f, y))) * extFactor;
            // the first product fused, as GCC compiles it
            theta = Math.fma(thetaInterp, 1 - rampMix, thetaExtrap * rampMix);
        }
        cos[pair] = Libm.cosf(theta) * mscale;
        sin[pair] = Libm.sinf(theta) * mscale;
    }
}
