package io.moestream.runtime.kv;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class KvStateFormatTest {

    private static final KvShape SHAPE = new KvShape(2, 2, 32, 99L);
    private static final int HEADS = 4;

    /** Saves meta + dirty blocks into a map, as the Flink operator will. */
    private static byte[] save(PagedKvCache c, Map<Integer, byte[]> state) {
        for (int i : c.dirtyBlocks()) {
            state.put(i, c.encodeBlock(i));
        }
        c.markClean();
        return c.encodeMeta();
    }

    @Test
    void incrementalSaveAndRestoreContinueExactlyAsTheOriginal() {
        KvTestData d = new KvTestData(SHAPE, 200, 30);
        for (KvCodec codec : new KvCodec[] {KvCodec.F32, KvCodec.F16, KvCodec.INT8, KvCodec.INT4}) {
            PagedKvCache c = new PagedKvCache(SHAPE, codec, 32);
            Map<Integer, byte[]> state = new HashMap<>();
            d.fill(c, 0, 45);
            byte[] meta = save(c, state);
            d.fill(c, 45, 90);
            c.setPolicy(HeadPolicy.of(2, 2, 4, 40, new boolean[] {false, true, true, false}));
            meta = save(c, state);
            d.fill(c, 90, 101);
            meta = save(c, state);

            PagedKvCache r = PagedKvCache.restore(SHAPE, meta, state::get);
            assertThat(r.length()).isEqualTo(101);
            assertThat(r.policy()).isEqualTo(c.policy());
            assertThat(r.codec()).isEqualTo(codec);
            assertThat(r.dirtyBlocks()).isEmpty();
            for (int i = 0; i < c.meta().blockCount(); i++) {
                assertThat(r.encodeBlock(i)).as("%s block %d", codec, i).isEqualTo(c.encodeBlock(i));
            }
            // both continue with identical attention outputs
            d.fill(c, 101, 130);
            d.fill(r, 101, 130);
            CompressedAttention a = new CompressedAttention(HEADS, 2, 32);
            float[] q = KvTestData.query(HEADS, 32, 31);
            for (int layer = 0; layer < 2; layer++) {
                float[] x = new float[HEADS * 32];
                float[] y = new float[HEADS * 32];
                a.attendAll(c, layer, q, 129, x);
                a.attendAll(r, layer, q, 129, y);
                assertThat(y).containsExactly(x);
            }
        }
    }

    @Test
    void corruptedTruncatedOrForeignBytesFailClearly() {
        KvTestData d = new KvTestData(SHAPE, 70, 32);
        PagedKvCache c = d.cache(KvCodec.INT8, 32);
        byte[] meta = c.encodeMeta();
        List<byte[]> blocks = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            blocks.add(c.encodeBlock(i));
        }
        byte[] bad = blocks.get(1).clone();
        bad[100] ^= 0x10;
        assertThatThrownBy(() -> PagedKvCache.restore(SHAPE, meta, i -> i == 1 ? bad : blocks.get(i)))
                .isInstanceOf(KvStateException.class).hasMessageContaining("KV block 1 is corrupted: CRC-32 mismatch");
        assertThatThrownBy(() -> PagedKvCache.restore(SHAPE, meta, i -> java.util.Arrays.copyOf(blocks.get(i), 50)))
                .isInstanceOf(KvStateException.class).hasMessageContaining("KV block 0");
        assertThatThrownBy(() -> PagedKvCache.restore(SHAPE, meta, i -> blocks.get(0)))
                .isInstanceOf(KvStateException.class).hasMessageContaining("KV block 1 holds block 0");
        assertThatThrownBy(() -> PagedKvCache.restore(SHAPE, meta, i -> null))
                .isInstanceOf(KvStateException.class).hasMessageContaining("KV block 0 is missing");
        assertThatThrownBy(() -> PagedKvCache.restore(new KvShape(2, 2, 32, 100L), meta, blocks::get))
                .isInstanceOf(KvStateException.class).hasMessageContaining("another model");
        byte[] badMeta = meta.clone();
        badMeta[0] = 'X';
        assertThatThrownBy(() -> KvCacheMeta.decode(badMeta)).isInstanceOf(KvStateException.class).hasMessageContaining("magic");
        assertThatThrownBy(() -> KvCacheMeta.decode(blocks.get(0))).isInstanceOf(KvStateException.class).hasMessageContaining("magic");
        byte[] flipped = meta.clone();
        flipped[20] ^= 1;
        assertThatThrownBy(() -> KvCacheMeta.decode(flipped)).hasMessageContaining("corrupted");
    }

    @Test
    void latentAndSlidingShapesSaveIncrementallyAndRestoreExactly() {
        // layer 0 and 2 slide over 20 positions, layer 1 sees all; one row per position is K and V
        KvShape shape = new KvShape(3, 1, 24, 5L, new KvShape.Attention(true, 20, 2));
        KvTestData d = new KvTestData(shape, 200, 33);
        for (KvCodec codec : new KvCodec[] {KvCodec.F32, KvCodec.F16, KvCodec.int8(16), KvCodec.int4(16)}) {
            PagedKvCache c = new PagedKvCache(shape, codec, 16);
            Map<Integer, byte[]> state = new HashMap<>();
            byte[] meta = null;
            for (int end : new int[] {7, 40, 41, 97, 150}) {
                d.fill(c, c.length(), end);
                meta = save(c, state);
            }
            // blocks wholly before position 150 - 20 + 1 = 131 are gone from the sliding layers, in state too
            for (int i = 0; i < c.meta().blockCount(); i++) {
                boolean old = i * 16 + 15 <= 130;
                assertThat(c.block(i).holds(0, 0, 1)).as("%s block %d layer 0", codec, i).isEqualTo(!old);
                assertThat(c.block(i).holds(2, 0, 1)).isEqualTo(!old);
                assertThat(c.block(i).holds(1, 0, 1)).isTrue();
            }
            PagedKvCache r = PagedKvCache.restore(shape, meta, state::get);
            assertThat(r.layerDataBytes(0)).isEqualTo(c.layerDataBytes(0));
            for (int i = 0; i < c.meta().blockCount(); i++) {
                assertThat(r.encodeBlock(i)).as("%s block %d", codec, i).isEqualTo(c.encodeBlock(i));
                assertThat(state.get(i)).isEqualTo(c.encodeBlock(i));
            }
            d.fill(c, 150, 170);
            d.fill(r, 150, 170);
            CompressedAttention a = new CompressedAttention(4, 1, 24, 0.2f, new int[] {20, 0, 20});
            float[] q = KvTestData.query(4, 24, 34);
            for (int layer = 0; layer < 3; layer++) {
                float[] x = new float[4 * 24];
                float[] y = new float[4 * 24];
                a.attendAll(c, layer, q, 169, x);
                a.attendAll(r, layer, q, 169, y);
                assertThat(y).containsExactly(x);
            }
        }
    }

    @Test
    void aBlockLackingASlabThatIsStillSeenIsRefused() {
        KvShape shape = new KvShape(2, 1, 8, 6L, new KvShape.Attention(false, 4, 2));
        KvTestData d = new KvTestData(shape, 40, 35);
        PagedKvCache c = d.cache(KvCodec.F32, 8);
        byte[] meta = c.encodeMeta();
        // the same bytes under metadata that says no layer slides: layer 0 of block 0 is missing
        PagedKvCache plain = new PagedKvCache(new KvShape(2, 1, 8, 6L), KvCodec.F32, 8);
        d.fill(plain, 0, 40);
        assertThat(c.block(0).holds(0, 0, 1)).isFalse();
        assertThatThrownBy(() -> PagedKvCache.restore(plain.shape(), plain.encodeMeta(), c::encodeBlock))
                .isInstanceOf(KvStateException.class).hasMessageContaining("KV block 0 lacks layer 0 head 0");
        assertThatThrownBy(() -> PagedKvCache.restore(plain.shape(), meta, c::encodeBlock))
                .isInstanceOf(KvStateException.class).hasMessageContaining("another model");
    }

    // ---------------------------------------------------------------------------------------------
    // golden bytes: every later version must keep reading each version's file

    private static final KvShape GOLDEN_V1_SHAPE = new KvShape(2, 2, 4, 0x1234L);
    private static final KvShape GOLDEN_V2_SHAPE = new KvShape(3, 1, 6, 0x5678L, new KvShape.Attention(true, 3, 2));

    /** The cache the v1 golden file was written from: int4/2, B=4, 10 positions, head (1,1) streaming. */
    private static PagedKvCache goldenV1Cache() {
        KvTestData d = new KvTestData(GOLDEN_V1_SHAPE, 10, 77);
        PagedKvCache c = new PagedKvCache(GOLDEN_V1_SHAPE, KvCodec.int4(2), 4);
        d.fill(c, 0, 10);
        c.setPolicy(HeadPolicy.of(2, 2, 1, 3, new boolean[] {false, false, false, true}));
        return c;
    }

    /**
     * The cache the v2 golden file was written from: latent rows 6 wide, int8/4 (G does not divide the
     * row), B=4, 14 positions, layers 0 and 2 sliding over 3 positions, layer 1 streaming (S=1, W=3).
     */
    private static PagedKvCache goldenV2Cache() {
        KvTestData d = new KvTestData(GOLDEN_V2_SHAPE, 14, 78);
        PagedKvCache c = new PagedKvCache(GOLDEN_V2_SHAPE, KvCodec.int8(4), 4);
        d.fill(c, 0, 14);
        c.setPolicy(HeadPolicy.of(3, 1, 1, 3, new boolean[] {false, true, false}));
        return c;
    }

    /** Writes the golden file of the current version with {@code -Dkv.writeGolden=true} (only for a new version). */
    private static List<byte[]> golden(String resource, PagedKvCache expected) throws IOException {
        if (Boolean.getBoolean("kv.writeGolden") && resource.endsWith("-v" + KvStateFormat.VERSION + ".bin")) {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            DataOutputStream out = new DataOutputStream(bytes);
            out.writeInt(1 + expected.meta().blockCount());
            byte[] m = expected.encodeMeta();
            out.writeInt(m.length);
            out.write(m);
            for (int i = 0; i < expected.meta().blockCount(); i++) {
                byte[] b = expected.encodeBlock(i);
                out.writeInt(b.length);
                out.write(b);
            }
            Files.write(Path.of("src/test/resources" + resource), bytes.toByteArray());
        }
        List<byte[]> entries = new ArrayList<>();
        try (InputStream raw = KvStateFormatTest.class.getResourceAsStream(resource)) {
            assertThat(raw).as("golden " + resource).isNotNull();
            DataInputStream in = new DataInputStream(raw);
            int n = in.readInt();
            for (int i = 0; i < n; i++) {
                entries.add(in.readNBytes(in.readInt()));
            }
        }
        return entries;
    }

    /** Same layers, heads, positions and data; a re-encoded copy reads back to the same cache again. */
    private static void assertSameCache(PagedKvCache r, PagedKvCache expected) {
        KvShape s = expected.shape();
        for (int l = 0; l < s.layers(); l++) {
            for (int h = 0; h < s.kvHeads(); h++) {
                int n = expected.length() * s.headDim();
                float[] k = new float[n];
                float[] v = new float[n];
                float[] ek = new float[n];
                float[] ev = new float[n];
                r.dequantize(l, h, k, v);
                expected.dequantize(l, h, ek, ev);
                assertThat(k).as("layer %d head %d keys", l, h).containsExactly(ek);
                assertThat(v).as("layer %d head %d values", l, h).containsExactly(ev);
            }
        }
        for (int i = 0; i < expected.meta().blockCount(); i++) {
            assertThat(r.encodeBlock(i)).isEqualTo(expected.encodeBlock(i));
        }
        assertThat(r.encodeMeta()).isEqualTo(expected.encodeMeta());
    }

    @Test
    void readsTheVersion1GoldenFile() throws IOException {
        PagedKvCache expected = goldenV1Cache();
        List<byte[]> entries = golden("/kv/kv-state-v1.bin", expected);
        assertThat(entries).hasSize(4);
        KvCacheMeta meta = KvCacheMeta.decode(entries.get(0));
        assertThat(meta.length()).isEqualTo(10);
        assertThat(meta.blockTokens()).isEqualTo(4);
        assertThat(meta.codec()).isEqualTo(KvCodec.int4(2));
        assertThat(meta.shape().attention()).isEqualTo(KvShape.Attention.PLAIN);
        assertThat(meta.policy().isStreaming(1, 1)).isTrue();
        assertThat(meta.policy().streamingCount()).isEqualTo(1);
        PagedKvCache r = PagedKvCache.restore(GOLDEN_V1_SHAPE, entries.get(0), i -> entries.get(i + 1));
        assertThat(r.block(1).holds(1, 1, 2)).isFalse();
        assertThat(r.block(2).sealed()).isFalse();
        assertSameCache(r, expected);
    }

    @Test
    void readsTheVersion2GoldenFile() throws IOException {
        PagedKvCache expected = goldenV2Cache();
        List<byte[]> entries = golden("/kv/kv-state-v2.bin", expected);
        assertThat(entries).hasSize(5);
        KvCacheMeta meta = KvCacheMeta.decode(entries.get(0));
        assertThat(meta.shape()).isEqualTo(GOLDEN_V2_SHAPE);
        assertThat(meta.codec()).isEqualTo(KvCodec.int8(4));
        PagedKvCache r = PagedKvCache.restore(GOLDEN_V2_SHAPE, entries.get(0), i -> entries.get(i + 1));
        // block 0 (positions 0-3): the sliding layers are past it, layer 1 keeps it as its sink;
        // blocks 1 and 2 (4-11): nothing left; block 3: the float32 tail
        assertThat(r.block(0).holds(0, 0, 1)).isFalse();
        assertThat(r.block(0).holds(1, 0, 1)).isTrue();
        assertThat(r.block(1).dataBytes()).isZero();
        assertThat(r.block(2).dataBytes()).isZero();
        assertThat(r.block(3).sealed()).isFalse();
        assertSameCache(r, expected);
        // this version writes these bytes
        assertThat(r.encodeMeta()).isEqualTo(entries.get(0));
        for (int i = 0; i < 4; i++) {
            assertThat(r.encodeBlock(i)).isEqualTo(entries.get(i + 1));
        }
    }
}
