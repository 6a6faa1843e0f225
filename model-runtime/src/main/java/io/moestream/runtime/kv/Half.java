package io.moestream.runtime.kv;

import io.moestream.runtime.gguf.Float16;

/** float16 helpers with directed rounding, for the KIVI group parameters. */
final class Half {

    private Half() {}

    static float toFloat(short h) {
        return Float16.toFloat(h);
    }

    static short nearest(float x) {
        return Float16.fromFloat(x);
    }

    /** The largest half that is {@code <= x}. */
    static short floor(float x) {
        short h = Float16.fromFloat(x);
        if (Float16.toFloat(h) > x) {
            int b = h & 0xFFFF;
            if ((b & 0x8000) == 0) {
                b = (b & 0x7FFF) == 0 ? 0x8001 : b - 1;
            } else {
                b = b + 1;
            }
            h = (short) b;
        }
        return h;
    }

    /** The smallest half that is {@code >= x}, for {@code x >= 0}. */
    static short ceilPositive(float x) {
        short h = Float16.fromFloat(x);
        if (Float16.toFloat(h) < x) {
            h = (short) ((h & 0xFFFF) + 1);
        }
        return h;
    }
}
