package io.moestream.runtime.kv;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class KvCodecTest {

    private static final KvShape SHAPE = new KvShape(2, 2, 32, 7L);

    @Test
    void parsesNamesAndGroupSizes() {
        assertThat(KvCodec.parse("f32")).isEqualTo(KvCodec.F32);
        assertThat(KvCodec.parse("F16")).isEqualTo(KvCodec.F16);
        assertThat(KvCodec.parse("int8")).isEqualTo(KvCodec.INT8);
        assertThat(KvCodec.parse("int4/16")).isEqualTo(KvCodec.int4(16));
        assertThat(KvCodec.int4(16).toString()).isEqualTo("int4/16");
        assertThatThrownBy(() -> KvCodec.parse("int3")).hasMessageContaining("unknown KV codec");
        assertThatThrownBy(() -> KvCodec.int8(0)).hasMessageContaining("group size");
    }

    @Test
    void bytesPerElementIncludeGroupScales() {
        assertThat(KvCodec.F16.bytesPerElement()).isEqualTo(2.0);
        assertThat(KvCodec.INT8.bytesPerElement()).isEqualTo(1.125);
        assertThat(KvCodec.INT4.bytesPerElement()).isEqualTo(0.625);
        assertThat(KvCodec.INT4.sectionBytes(32, 32)).isEqualTo(32 * 32 / 2 + 4 * 32);
    }

    @Test
    void groupSizeMustDivideBlockAndHeadDim() {
        assertThatThrownBy(() -> new PagedKvCache(SHAPE, KvCodec.int8(64), 32))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("must divide");
        assertThatThrownBy(() -> new PagedKvCache(SHAPE, KvCodec.int4(24), 48))
                .hasMessageContaining("head dim 32");
    }

    @Test
    void f32IsExactAndF16IsHalfRounding() {
        KvTestData d = new KvTestData(SHAPE, 64, 1);
        assertThat(maxError(d, KvCodec.F32, false)).isZero();
        // f16: relative 2^-11 of |x| (|x| < ~40 here)
        assertThat(maxError(d, KvCodec.F16, false)).isLessThan(40 * 0x1p-11);
    }

    @Test
    void int8AndInt4StayWithinTheDocumentedGroupBound() {
        KvTestData d = new KvTestData(SHAPE, 96, 2);
        for (KvCodec codec : new KvCodec[] {KvCodec.INT8, KvCodec.INT4, KvCodec.int8(8), KvCodec.int4(16)}) {
            double worst = maxError(d, codec, true);
            // bound relative to the group's range: 0.5 * (1 + 2^-9) / qmax, plus the float16 floor of min
            assertThat(worst).as(codec.toString()).isLessThanOrEqualTo(1.0);
            if (codec.kind() == KvCodec.Kind.INT8) {
                assertThat(worst * 0.5 / 255 * (1 + 0x1p-9)).isLessThan(0.01); // <= ~0.2 % of the range
            }
        }
    }

    /**
     * An int8 slab keeps its key codes channel by channel in memory but writes them position by
     * position (the state and device format): a slab read back from its bytes equals it, and the
     * keys decoded straight from the bytes in position order are the slab's own dequantized keys.
     */
    @Test
    void int8KeyCodesAreWrittenPositionByPosition() {
        int hd = 64, tokens = 32;
        java.util.SplittableRandom r = new java.util.SplittableRandom(61);
        HeadSlab.F32Slab f = HeadSlab.F32Slab.open(hd, tokens);
        for (int t = 0; t < tokens; t++) {
            float[] k = new float[hd];
            float[] v = new float[hd];
            for (int c = 0; c < hd; c++) {
                k[c] = (float) r.nextGaussian() * (1 + c % 5);
                v[c] = (float) r.nextGaussian();
            }
            f.put(t, k, 0, v, 0);
        }
        HeadSlab slab = HeadSlab.seal(f, KvCodec.INT8);
        java.nio.ByteBuffer bytes = java.nio.ByteBuffer.allocate((int) slab.bytes()).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        slab.write(bytes);
        bytes.flip();
        float[] k = new float[tokens * hd];
        float[] v = new float[tokens * hd];
        slab.dequantize(k, 0, v, 0);
        // kScale, kMin (one per channel for the block's one key group), then the codes
        short[] scale = new short[hd];
        short[] min = new short[hd];
        for (int c = 0; c < hd; c++) {
            scale[c] = bytes.getShort(2 * c);
            min[c] = bytes.getShort(2 * hd + 2 * c);
        }
        for (int t = 0; t < tokens; t++) {
            for (int c = 0; c < hd; c++) {
                int code = bytes.get(4 * hd + t * hd + c) & 0xFF;
                float key = Half.toFloat(min[c]) + Half.toFloat(scale[c]) * code;
                assertThat(key).as("position " + t + " channel " + c).isEqualTo(k[t * hd + c]);
            }
        }
        HeadSlab back = HeadSlab.readSealed(bytes.duplicate().order(java.nio.ByteOrder.LITTLE_ENDIAN), KvCodec.INT8, tokens, hd);
        float[] k2 = new float[tokens * hd];
        float[] v2 = new float[tokens * hd];
        back.dequantize(k2, 0, v2, 0);
        assertThat(k2).containsExactly(k);
        assertThat(v2).containsExactly(v);
        float[] q = new float[hd];
        for (int c = 0; c < hd; c++) {
            q[c] = (float) r.nextGaussian();
        }
        float[] a1 = new float[tokens];
        float[] a2 = new float[tokens];
        slab.scores(q, 0, 0, tokens, 0.125f, a1, 0, new float[hd]);
        back.scores(q, 0, 0, tokens, 0.125f, a2, 0, new float[hd]);
        assertThat(a2).containsExactly(a1);
    }

    /**
     * Max over all elements of |x - x'| divided by the documented bound
     * {@code 0.5 * (range + |min| 2^-10 + 2^-24) / qmax * (1 + 2^-9)} (quantized codecs), or the plain
     * max |x - x'| otherwise.
     */
    private static double maxError(KvTestData d, KvCodec codec, boolean relative) {
        int bt = 32;
        PagedKvCache c = d.cache(codec, bt);
        int hd = SHAPE.headDim();
        int g = codec.groupSize();
        double worst = 0;
        for (int l = 0; l < SHAPE.layers(); l++) {
            for (int h = 0; h < SHAPE.kvHeads(); h++) {
                float[] k = new float[d.length * hd];
                float[] v = new float[d.length * hd];
                c.dequantize(l, h, k, v);
                float[] ko = d.head(d.keys, l, h);
                float[] vo = d.head(d.values, l, h);
                for (int p = 0; p < d.length; p++) {
                    for (int i = 0; i < hd; i++) {
                        double ek = Math.abs(k[p * hd + i] - ko[p * hd + i]);
                        double ev = Math.abs(v[p * hd + i] - vo[p * hd + i]);
                        if (relative) {
                            // key group: channel i, tokens [p/g*g, +g); value group: token p, channels [i/g*g, +g)
                            double kb = bound(ko, hd, p / g * g, g, i, 1, codec);
                            double vb = bound(vo, hd, p, 1, i / g * g, g, codec);
                            worst = Math.max(worst, Math.max(ek / kb, ev / vb));
                        } else {
                            worst = Math.max(worst, Math.max(ek, ev));
                        }
                    }
                }
            }
        }
        return worst;
    }

    private static double bound(float[] x, int hd, int t0, int nt, int c0, int nc, KvCodec codec) {
        double min = Double.POSITIVE_INFINITY;
        double max = Double.NEGATIVE_INFINITY;
        for (int t = t0; t < t0 + nt; t++) {
            for (int c = c0; c < c0 + nc; c++) {
                min = Math.min(min, x[t * hd + c]);
                max = Math.max(max, x[t * hd + c]);
            }
        }
        return 0.5 * (max - min + Math.abs(min) * 0x1p-10 + 0x1p-24) / codec.qmax() * (1 + 0x1p-9) + 1e-7;
    }
}
