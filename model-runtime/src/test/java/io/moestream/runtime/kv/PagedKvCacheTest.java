package io.moestream.runtime.kv;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class PagedKvCacheTest {

    private static final KvShape SHAPE = new KvShape(2, 2, 16, 42L);

    @Test
    void tailBlockStaysExactUntilFullThenIsCompressed() {
        KvTestData d = new KvTestData(SHAPE, 40, 3);
        PagedKvCache c = new PagedKvCache(SHAPE, KvCodec.int4(16), 16);
        int hd = SHAPE.headDim();
        for (int n = 1; n <= 40; n++) {
            d.fill(c, n - 1, n);
            int tailStart = n / 16 * 16;
            float[] k = new float[n * hd];
            float[] v = new float[n * hd];
            c.dequantize(1, 1, k, v);
            float[] ko = d.head(d.keys, 1, 1);
            for (int p = tailStart; p < n; p++) {
                for (int i = 0; i < hd; i++) {
                    assertThat(k[p * hd + i]).isEqualTo(ko[p * hd + i]);
                }
            }
            for (int b = 0; b < c.blockCount(); b++) {
                boolean full = (b + 1) * 16 <= n;
                assertThat(c.block(b).sealed()).as("block %d at length %d", b, n).isEqualTo(full);
                assertThat(c.block(b).codec()).isEqualTo(full ? KvCodec.int4(16) : KvCodec.F32);
            }
        }
        // a sealed int4 block is lossy
        float[] k = new float[40 * hd];
        float[] v = new float[40 * hd];
        c.dequantize(1, 1, k, v);
        assertThat(k[0]).isNotEqualTo(d.head(d.keys, 1, 1)[0]);
        assertThat(c.length()).isEqualTo(40);
        assertThat(c.blockCount()).isEqualTo(3);
    }

    /**
     * Layer 0 slides over 20 positions (period 2), layer 1 sees all: a sealed block leaves layer 0 as
     * soon as no later query can see it, becoming dirty once, so layer 0 holds at most the window plus
     * two blocks while layer 1 grows.
     */
    @Test
    void slidingLayersDropBlocksBehindTheirWindow() {
        KvShape shape = new KvShape(2, 2, 16, 43L, new KvShape.Attention(false, 20, 2));
        KvTestData d = new KvTestData(shape, 290, 6);
        PagedKvCache c = new PagedKvCache(shape, KvCodec.int8(16), 16);
        long perPosition = 2 * 2 * 16 * 4; // float32 tail, K and V of two heads
        for (int n = 1; n <= 290; n++) {
            d.fill(c, n - 1, n);
            for (int b = 0; b < c.blockCount(); b++) {
                boolean gone = b * 16 + 15 <= n - 20;
                assertThat(c.block(b).holds(0, 1, 2)).as("layer 0 block %d at %d", b, n).isEqualTo(!gone);
                assertThat(c.block(b).holds(1, 1, 2)).isTrue();
            }
            assertThat(c.layerDataBytes(0)).isLessThanOrEqualTo((20 + 2 * 16) * perPosition);
            // dirty: the block being written, and the block that just left the window (at n = 16b + 35)
            boolean leaves = n >= 35 && (n - 35) % 16 == 0;
            int written = (n - 1) / 16;
            assertThat(c.dirtyBlocks()).as("at %d", n).containsExactly(leaves ? new int[] {(n - 35) / 16, written} : new int[] {written});
            c.markClean();
        }
        assertThat(c.layerDataBytes(1)).isGreaterThan(5 * c.layerDataBytes(0));
        // at length 290 layer 0 holds blocks 16.. (positions 256..): a continuation from 288 sees
        // 269..287, held; one from 272 would see 253..271, whose block 15 is gone
        assertThat(c.canTruncateTo(18)).isTrue();
        assertThat(c.canTruncateTo(17)).isFalse();
        assertThatThrownBy(() -> c.truncateBlocks(17)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("sliding-window layers (window 20) have dropped positions");
        c.truncateBlocks(18);
        assertThat(c.length()).isEqualTo(288);
    }

    @Test
    void backendsRefuseLatentAndWindowedCachesByName() {
        KvShape latent = new KvShape(1, 1, 24, 44L, new KvShape.Attention(true, 0, 0));
        PagedKvCache c = new KvTestData(latent, 40, 7).cache(KvCodec.F32, 16);
        assertThat(c.backendCompatible()).isFalse();
        assertThatThrownBy(() -> c.backendBlock(0)).isInstanceOf(IllegalStateException.class).hasMessageContaining("MLA latent");
        assertThatThrownBy(c::backendTail).isInstanceOf(IllegalStateException.class).hasMessageContaining("MLA latent");
        KvShape windowed = new KvShape(2, 1, 16, 45L, new KvShape.Attention(false, 4, 2));
        PagedKvCache w = new KvTestData(windowed, 40, 8).cache(KvCodec.F32, 16);
        assertThat(w.backendCompatible()).isFalse();
        assertThatThrownBy(() -> w.backendBlock(0)).isInstanceOf(IllegalStateException.class).hasMessageContaining("sliding layers");
        assertThat(new PagedKvCache(SHAPE, KvCodec.F32).backendCompatible()).isTrue();
    }

    @Test
    void stateBytesAreTheEncodedMetaAndBlocks() {
        for (KvCodec codec : new KvCodec[] {KvCodec.F32, KvCodec.F16, KvCodec.int8(16), KvCodec.int4(16)}) {
            KvTestData d = new KvTestData(SHAPE, 60, 5);
            PagedKvCache c = new PagedKvCache(SHAPE, codec, 16);
            for (int n : new int[] {1, 16, 17, 40, 48, 60}) {
                d.fill(c, c.length(), n);
                long encoded = c.encodeMeta().length;
                for (int b = 0; b < c.blockCount(); b++) {
                    encoded += c.encodeBlock(b).length;
                }
                assertThat(c.stateBytes()).as("%s at length %d", codec, n).isEqualTo(encoded);
            }
        }
    }

    @Test
    void dirtyBlocksAreTheTailAndNewBlocks() {
        KvTestData d = new KvTestData(SHAPE, 100, 4);
        PagedKvCache c = new PagedKvCache(SHAPE, KvCodec.int8(16), 16);
        d.fill(c, 0, 40);
        assertThat(c.dirtyBlocks()).containsExactly(0, 1, 2);
        c.markClean();
        assertThat(c.dirtyBlocks()).isEmpty();
        d.fill(c, 40, 41); // writes into the partial block 2
        assertThat(c.dirtyBlocks()).containsExactly(2);
        c.markClean();
        d.fill(c, 41, 70); // fills and seals block 2, adds 3 and 4
        assertThat(c.dirtyBlocks()).containsExactly(2, 3, 4);
    }

    @Test
    void droppingStreamingHeadsMarksThoseBlocksDirtyAndKeepsSinkAndWindow() {
        KvTestData d = new KvTestData(SHAPE, 200, 5);
        PagedKvCache c = new PagedKvCache(SHAPE, KvCodec.int8(16), 16);
        d.fill(c, 0, 100);
        c.markClean();
        boolean[] s = new boolean[4];
        s[1] = true; // layer 0, kv head 1
        c.setPolicy(HeadPolicy.of(2, 2, 4, 32, s));
        // blocks fully in [4, 100 - 32]: 1..3 (block 4 = 64..79 ends at 79 > 68)
        assertThat(c.dirtyBlocks()).containsExactly(1, 2, 3);
        for (int b = 0; b < c.blockCount(); b++) {
            assertThat(c.block(b).holds(0, 1, 2)).isEqualTo(b == 0 || b >= 4);
            assertThat(c.block(b).holds(0, 0, 2)).isTrue();
        }
        c.markClean();
        d.fill(c, 100, 117); // length 117: block 4 (64..79) now droppable (79 <= 85), block 6 sealed, 7 new
        assertThat(c.dirtyBlocks()).containsExactly(4, 6, 7);
        assertThatThrownBy(() -> c.setPolicy(HeadPolicy.allRetrieval(2, 2))).isInstanceOf(IllegalStateException.class);
    }

    @Test
    void writesMustBeUncommittedAndCommitsInRange() {
        PagedKvCache c = new PagedKvCache(SHAPE, KvCodec.F16, 8);
        KvTestData d = new KvTestData(SHAPE, 10, 6);
        d.fill(c, 0, 3);
        assertThatThrownBy(() -> c.write(0, 2, d.keys[0], 0, d.values[0], 0)).hasMessageContaining("already committed");
        assertThatThrownBy(() -> c.commit(20)).hasMessageContaining("cannot commit");
        assertThatThrownBy(() -> c.commit(2)).hasMessageContaining("cannot commit");
    }

    @Test
    void batchedWritesThenOneCommitSealEveryFullBlock() {
        KvTestData d = new KvTestData(SHAPE, 40, 7);
        PagedKvCache c = new PagedKvCache(SHAPE, KvCodec.int8(16), 16);
        int kvDim = SHAPE.kvDim();
        for (int l = 0; l < 2; l++) {
            for (int p = 0; p < 40; p++) {
                c.write(l, p, d.keys[l], p * kvDim, d.values[l], p * kvDim);
            }
        }
        assertThat(c.length()).isZero();
        c.commit(40);
        assertThat(c.block(0).sealed()).isTrue();
        assertThat(c.block(1).sealed()).isTrue();
        assertThat(c.block(2).sealed()).isFalse();
        PagedKvCache one = d.cache(KvCodec.int8(16), 16);
        assertThat(c.encodeBlock(0)).isEqualTo(one.encodeBlock(0));
        assertThat(c.encodeBlock(2)).isEqualTo(one.encodeBlock(2));
    }

    @Test
    void copyIsIndependent() {
        KvTestData d = new KvTestData(SHAPE, 30, 8);
        PagedKvCache c = new PagedKvCache(SHAPE, KvCodec.int8(16), 16);
        d.fill(c, 0, 20);
        PagedKvCache copy = c.copy();
        d.fill(c, 20, 30);
        assertThat(copy.length()).isEqualTo(20);
        KvTestData other = new KvTestData(SHAPE, 30, 9);
        other.fill(copy, 20, 30);
        assertThat(copy.encodeBlock(0)).isEqualTo(c.encodeBlock(0));
        assertThat(copy.encodeBlock(1)).isNotEqualTo(c.encodeBlock(1));
    }

    @Test
    void compressedSizesMatchTheCodec() {
        KvShape shape = new KvShape(4, 2, 32, 1L); // trained-moe's KV shape
        KvTestData d = new KvTestData(shape, 64, 10);
        long fp16 = 64L * 2 * shape.layers() * shape.kvDim() * 2;
        assertThat(d.cache(KvCodec.F16, 32).dataBytes()).isEqualTo(fp16);
        assertThat(d.cache(KvCodec.INT8, 32).dataBytes()).isEqualTo(fp16 * 1125 / 2000);
        assertThat(d.cache(KvCodec.INT4, 32).dataBytes()).isEqualTo(fp16 * 625 / 2000);
    }

    @Test
    void backendBlocksAreTheStateBlocksDataAndAppendBackIdentically() {
        for (KvCodec codec : new KvCodec[] {KvCodec.F32, KvCodec.F16, KvCodec.int8(8), KvCodec.int4(8)}) {
            KvTestData d = new KvTestData(SHAPE, 45, 9);
            PagedKvCache source = d.cache(codec, 16);
            // the backend's sealed block is the state record's data: header (23 B + presence bits) and CRC left out
            byte[] record = source.encodeBlock(1);
            byte[] data = source.backendBlock(1);
            assertThat(java.util.Arrays.copyOfRange(record, 23 + 1, record.length - 4)).as(codec.toString()).isEqualTo(data);
            assertThat(source.backendTail()).hasSize(4 * 2 * 2 * 2 * 16 * 16);

            // a cache at 10 positions takes positions 10..44 as a backend computed them
            PagedKvCache target = new PagedKvCache(SHAPE, codec, 16);
            d.fill(target, 0, 10);
            target.markClean();
            target.appendBackendBlocks(45, source::backendBlock, source.backendTail());
            assertThat(target.length()).isEqualTo(45);
            assertThat(target.dirtyBlocks()).containsExactly(0, 1, 2);
            for (int i = 0; i < 3; i++) {
                assertThat(target.encodeBlock(i)).as("%s block %d", codec, i).isEqualTo(source.encodeBlock(i));
            }
            assertThat(new PagedKvCache(SHAPE, codec, 16).backendTail()).isNull();
        }
    }
}
