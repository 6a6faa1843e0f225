package io.moestream.runtime.kv;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

class CompressedAttentionTest {

    // 2 layers, 2 KV heads of 32, 8 query heads (GQA group 4)
    private static final KvShape SHAPE = new KvShape(2, 2, 32, 11L);
    private static final int HEADS = 8;
    private static final int HD = 32;

    @Test
    void overCompressedBlocksEqualsOverTheDequantizedCopyAndIsCloseToTheOriginal() {
        KvTestData d = new KvTestData(SHAPE, 150, 20);
        float[] q = KvTestData.query(HEADS, HD, 21);
        for (KvCodec codec : new KvCodec[] {KvCodec.F32, KvCodec.F16, KvCodec.INT8, KvCodec.INT4}) {
            PagedKvCache c = d.cache(codec, 32);
            CompressedAttention att = new CompressedAttention(HEADS, 2, HD);
            double worstDeq = 0;
            double worstOrig = 0;
            for (int layer = 0; layer < 2; layer++) {
                for (int qh = 0; qh < HEADS; qh++) {
                    int kvh = qh / 4;
                    float[] k = new float[150 * HD];
                    float[] v = new float[150 * HD];
                    c.dequantize(layer, kvh, k, v);
                    for (int pos : new int[] {0, 31, 32, 100, 149}) {
                        float[] out = new float[HEADS * HD];
                        att.attend(c, layer, qh, q, qh * HD, pos, out, qh * HD);
                        double[] deq = KvTestData.reference(q, qh * HD, k, v, HD, pos, KvTestData.all(pos + 1));
                        double[] orig = KvTestData.reference(q, qh * HD, d.head(d.keys, layer, kvh), d.head(d.values, layer, kvh),
                                HD, pos, KvTestData.all(pos + 1));
                        for (int i = 0; i < HD; i++) {
                            worstDeq = Math.max(worstDeq, Math.abs(out[qh * HD + i] - deq[i]));
                            worstOrig = Math.max(worstOrig, Math.abs(out[qh * HD + i] - orig[i]));
                        }
                    }
                }
            }
            assertThat(worstDeq).as("%s vs dequantized copy", codec).isLessThan(2e-5);
            // int4 on keys with x8 outlier channels moves peaked attention a lot; the real-model figures are in KvEval
            double tol = codec.kind() == KvCodec.Kind.INT4 ? 1.0 : codec.kind() == KvCodec.Kind.INT8 ? 0.05 : 5e-3;
            assertThat(worstOrig).as("%s vs original floats", codec).isLessThan(tol);
            if (codec == KvCodec.F32) {
                assertThat(worstOrig).isLessThan(2e-5);
            }
        }
    }

    /**
     * A latent cache (one 40-wide row per position as key and value, G = 16 not dividing it): attention
     * reads the key row as the value, over every codec, as over the dequantized copy; float32 equals a
     * K+V cache holding the row twice bit for bit.
     */
    @Test
    void aLatentRowIsKeyAndValue() {
        int hd = 40;
        KvShape latent = new KvShape(1, 1, hd, 12L, new KvShape.Attention(true, 0, 0));
        KvShape twice = new KvShape(1, 1, hd, 12L);
        KvTestData d = new KvTestData(latent, 100, 24);
        float[] q = KvTestData.query(4, hd, 25);
        PagedKvCache copy = new PagedKvCache(twice, KvCodec.F32, 16);
        for (int p = 0; p < 100; p++) {
            copy.write(0, p, d.keys[0], p * hd, d.keys[0], p * hd);
            copy.commit(p + 1);
        }
        for (KvCodec codec : new KvCodec[] {KvCodec.F32, KvCodec.F16, KvCodec.int8(16), KvCodec.int4(16)}) {
            PagedKvCache c = new PagedKvCache(latent, codec, 16);
            for (int p = 0; p < 100; p++) {
                c.write(0, p, d.keys[0], p * hd, null, 0);
                c.commit(p + 1);
            }
            assertThat(c.dataBytes()).isEqualTo(6 * codec.sectionBytes(16, hd) + 4L * 4 * hd); // no V section
            float[] k = new float[100 * hd];
            float[] v = new float[100 * hd];
            c.dequantize(0, 0, k, v);
            assertThat(v).containsExactly(k);
            CompressedAttention att = new CompressedAttention(4, 1, hd);
            for (int pos : new int[] {0, 15, 16, 70, 99}) {
                float[] out = new float[4 * hd];
                float[] exact = new float[4 * hd];
                att.attendAll(c, 0, q, pos, out);
                att.attendAll(copy, 0, q, pos, exact);
                if (codec == KvCodec.F32) {
                    assertThat(out).containsExactly(exact);
                }
                for (int h = 0; h < 4; h++) {
                    double[] ref = KvTestData.reference(q, h * hd, k, v, hd, pos, KvTestData.all(pos + 1));
                    for (int i = 0; i < hd; i++) {
                        assertThat((double) out[h * hd + i]).as("%s pos %d head %d", codec, pos, h)
                                .isCloseTo(ref[i], org.assertj.core.data.Offset.offset(5e-5));
                    }
                }
            }
        }
    }

    /** The transposed value sums of a latent int8 slab are its lane-row sums bit for bit. */
    @Test
    void latentInt8ColumnSumsAreTheLaneRowSums() {
        int hd = 40;
        KvShape latent = new KvShape(1, 1, hd, 13L, new KvShape.Attention(true, 0, 0));
        KvTestData d = new KvTestData(latent, 32, 26);
        PagedKvCache c = new PagedKvCache(latent, KvCodec.int8(16), 32);
        d.fill(c, 0, 32);
        IntSlab slab = (IntSlab) c.slab(0, 0, 0);
        assertThat(slab.columnar()).isTrue();
        java.util.SplittableRandom r = new java.util.SplittableRandom(27);
        float[] p = new float[64 + 32];
        for (int t = 0; t < p.length; t++) {
            p[t] = t % 7 == 0 ? 0f : (float) r.nextDouble();
        }
        for (int lanes : new int[] {16, 64}) {
            for (int base : new int[] {64, 3}) {
                float[] rows = new float[lanes * hd];
                float[] columns = new float[lanes * hd];
                for (int i = 0; i < rows.length; i++) {
                    rows[i] = (float) r.nextGaussian();
                    columns[(i % hd) * lanes + i / hd] = rows[i];
                }
                slab.accumulate(p, base, 2, 30, rows, lanes);
                slab.accumulateColumns(p, base, 2, 30, columns, lanes);
                for (int i = 0; i < rows.length; i++) {
                    assertThat(columns[(i % hd) * lanes + i / hd]).as("lanes %d base %d element %d", lanes, base, i).isEqualTo(rows[i]);
                }
            }
        }
    }

    @Test
    void streamingHeadAttendsOnlyToSinkAndWindow() {
        KvTestData d = new KvTestData(SHAPE, 120, 22);
        PagedKvCache c = d.cache(KvCodec.F32, 16);
        boolean[] s = new boolean[4];
        s[2] = true; // layer 1, kv head 0 (query heads 0..3)
        c.setPolicy(HeadPolicy.of(2, 2, 4, 24, s));
        CompressedAttention att = new CompressedAttention(HEADS, 2, HD);
        float[] q = KvTestData.query(HEADS, HD, 23);
        int pos = 119;
        boolean[] visible = new boolean[pos + 1];
        for (int t = 0; t <= pos; t++) {
            visible[t] = t < 4 || t > pos - 24;
        }
        for (int qh = 0; qh < HEADS; qh++) {
            float[] out = new float[HEADS * HD];
            att.attend(c, 1, qh, q, qh * HD, pos, out, qh * HD);
            int kvh = qh / 4;
            double[] ref = KvTestData.reference(q, qh * HD, d.head(d.keys, 1, kvh), d.head(d.values, 1, kvh), HD, pos,
                    kvh == 0 ? visible : KvTestData.all(pos + 1));
            for (int i = 0; i < HD; i++) {
                assertThat((double) out[qh * HD + i]).isCloseTo(ref[i], org.assertj.core.data.Offset.offset(2e-5));
            }
        }
        // data outside sink + window was dropped for that head, and is not needed
        assertThat(c.block(0).holds(1, 0, 2)).isTrue();
        assertThat(c.block(2).holds(1, 0, 2)).isFalse();
        assertThat(c.block(2).holds(1, 1, 2)).isTrue();
    }

    @Test
    void streamingHeadEqualsFullAttentionWhenTheSequenceFitsSinkPlusWindow() {
        KvTestData d = new KvTestData(SHAPE, 28, 24);
        PagedKvCache full = d.cache(KvCodec.int8(16), 16);
        PagedKvCache pruned = d.cache(KvCodec.int8(16), 16);
        pruned.setPolicy(HeadPolicy.of(2, 2, 4, 24, new boolean[] {true, true, true, true}));
        CompressedAttention att = new CompressedAttention(HEADS, 2, HD);
        float[] q = KvTestData.query(HEADS, HD, 25);
        for (int pos = 0; pos < 28; pos++) {
            float[] a = new float[HEADS * HD];
            float[] b = new float[HEADS * HD];
            att.attendAll(full, 0, q, pos, a);
            att.attendAll(pruned, 0, q, pos, b);
            assertThat(b).containsExactly(a);
        }
    }

    @Test
    void observerSeesNormalisedProbabilitiesOfFullHeadsOnly() {
        KvTestData d = new KvTestData(SHAPE, 40, 26);
        PagedKvCache c = d.cache(KvCodec.int8(16), 16);
        CompressedAttention att = new CompressedAttention(HEADS, 2, HD);
        List<Double> sums = new ArrayList<>();
        att.setObserver((layer, qHead, queryPos, probs) -> {
            double s = 0;
            for (int t = 0; t <= queryPos; t++) {
                s += probs[t];
            }
            sums.add(s);
        });
        float[] q = KvTestData.query(HEADS, HD, 27);
        att.attendAll(c, 0, q, 39, new float[HEADS * HD]);
        assertThat(sums).hasSize(HEADS).allSatisfy(s -> assertThat(s).isCloseTo(1.0, org.assertj.core.data.Offset.offset(1e-5)));
        // bytes read: 40 positions of int8 (two sealed blocks) + f32 tail, per query head
        assertThat(att.bytesRead()).isPositive();
    }
}
