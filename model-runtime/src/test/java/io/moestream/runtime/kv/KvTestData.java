package io.moestream.runtime.kv;

import java.util.SplittableRandom;

/** Deterministic K/V data with key-like channel offsets and outlier channels, and a reference attention. */
final class KvTestData {

    final KvShape shape;
    final int length;
    final float[][] keys;   // [layer][pos * kvDim + h * headDim + i]
    final float[][] values;

    KvTestData(KvShape shape, int length, long seed) {
        this.shape = shape;
        this.length = length;
        SplittableRandom r = new SplittableRandom(seed);
        int kvDim = shape.kvDim();
        keys = new float[shape.layers()][length * kvDim];
        values = new float[shape.layers()][length * kvDim];
        for (int l = 0; l < shape.layers(); l++) {
            float[] offset = new float[kvDim];
            float[] gain = new float[kvDim];
            for (int c = 0; c < kvDim; c++) {
                offset[c] = (float) (r.nextDouble() * 6 - 3);
                gain[c] = c % 7 == 3 ? 8f : 1f; // outlier channels, as keys have
            }
            for (int p = 0; p < length; p++) {
                for (int c = 0; c < kvDim; c++) {
                    keys[l][p * kvDim + c] = offset[c] + gain[c] * (float) gaussian(r);
                    values[l][p * kvDim + c] = (float) gaussian(r);
                }
            }
        }
    }

    static double gaussian(SplittableRandom r) {
        double u = Math.max(1e-12, r.nextDouble());
        return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r.nextDouble());
    }

    /** Writes positions [from, to) of every layer and commits each position, like a forward pass. */
    void fill(PagedKvCache cache, int from, int to) {
        int kvDim = shape.kvDim();
        for (int p = from; p < to; p++) {
            for (int l = 0; l < shape.layers(); l++) {
                cache.write(l, p, keys[l], p * kvDim, values[l], p * kvDim);
            }
            cache.commit(p + 1);
        }
    }

    PagedKvCache cache(KvCodec codec, int blockTokens) {
        PagedKvCache c = new PagedKvCache(shape, codec, blockTokens);
        fill(c, 0, length);
        return c;
    }

    /** Random query vectors, heads * headDim. */
    static float[] query(int heads, int headDim, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] q = new float[heads * headDim];
        for (int i = 0; i < q.length; i++) {
            q[i] = (float) gaussian(r);
        }
        return q;
    }

    /**
     * Naive attention in double over per-head arrays k/v [pos][headDim] for query position
     * queryPos, seeing positions where visible[t].
     */
    static double[] reference(float[] q, int qOff, float[] k, float[] v, int headDim, int queryPos, boolean[] visible) {
        double scale = 1.0 / Math.sqrt(headDim);
        double[] s = new double[queryPos + 1];
        double max = Double.NEGATIVE_INFINITY;
        for (int t = 0; t <= queryPos; t++) {
            if (!visible[t]) {
                continue;
            }
            double d = 0;
            for (int i = 0; i < headDim; i++) {
                d += (double) q[qOff + i] * k[t * headDim + i];
            }
            s[t] = d * scale;
            max = Math.max(max, s[t]);
        }
        double sum = 0;
        for (int t = 0; t <= queryPos; t++) {
            if (visible[t]) {
                s[t] = Math.exp(s[t] - max);
                sum += s[t];
            }
        }
        double[] out = new double[headDim];
        for (int t = 0; t <= queryPos; t++) {
            if (visible[t]) {
                for (int i = 0; i < headDim; i++) {
                    out[i] += s[t] / sum * v[t * headDim + i];
                }
            }
        }
        return out;
    }

    /** Per-head K (or V) of the original data, [pos][headDim]. */
    float[] head(float[][] kv, int layer, int kvHead) {
        int hd = shape.headDim();
        float[] out = new float[length * hd];
        for (int p = 0; p < length; p++) {
            System.arraycopy(kv[layer], p * shape.kvDim() + kvHead * hd, out, p * hd, hd);
        }
        return out;
    }

    static boolean[] all(int n) {
        boolean[] b = new boolean[n];
        java.util.Arrays.fill(b, true);
        return b;
    }
}
