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

    // ---------------------------------------------------------------------------------------------
    // golden v1 bytes: a format change must keep reading this file

    private static final String GOLDEN = "/kv/kv-state-v1.bin";
    private static final KvShape GOLDEN_SHAPE = new KvShape(2, 2, 4, 0x1234L);

    /** The cache the golden file was written from: int4/2, B=4, 10 positions, head (1,1) streaming. */
    private static PagedKvCache goldenCache() {
        KvTestData d = new KvTestData(GOLDEN_SHAPE, 10, 77);
        PagedKvCache c = new PagedKvCache(GOLDEN_SHAPE, KvCodec.int4(2), 4);
        d.fill(c, 0, 10);
        c.setPolicy(HeadPolicy.of(2, 2, 1, 3, new boolean[] {false, false, false, true}));
        return c;
    }

    @Test
    void readsTheVersion1GoldenFile() throws IOException {
        PagedKvCache expected = goldenCache();
        if (Boolean.getBoolean("kv.writeGolden")) {
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
            Files.write(Path.of("src/test/resources" + GOLDEN), bytes.toByteArray());
        }
        List<byte[]> entries = new ArrayList<>();
        try (InputStream raw = KvStateFormatTest.class.getResourceAsStream(GOLDEN)) {
            assertThat(raw).as("golden " + GOLDEN).isNotNull();
            DataInputStream in = new DataInputStream(raw);
            int n = in.readInt();
            for (int i = 0; i < n; i++) {
                entries.add(in.readNBytes(in.readInt()));
            }
        }
        assertThat(entries).hasSize(4);
        KvCacheMeta meta = KvCacheMeta.decode(entries.get(0));
        assertThat(meta.length()).isEqualTo(10);
        assertThat(meta.blockTokens()).isEqualTo(4);
        assertThat(meta.codec()).isEqualTo(KvCodec.int4(2));
        assertThat(meta.policy().isStreaming(1, 1)).isTrue();
        assertThat(meta.policy().streamingCount()).isEqualTo(1);
        PagedKvCache r = PagedKvCache.restore(GOLDEN_SHAPE, entries.get(0), i -> entries.get(i + 1));
        assertThat(r.block(1).holds(1, 1, 2)).isFalse();
        assertThat(r.block(2).sealed()).isFalse();
        float[] k = new float[40];
        float[] v = new float[40];
        float[] ek = new float[40];
        float[] ev = new float[40];
        r.dequantize(0, 1, k, v);
        expected.dequantize(0, 1, ek, ev);
        assertThat(k).containsExactly(ek);
        assertThat(v).containsExactly(ev);
        // this version writes the same bytes
        assertThat(r.encodeMeta()).isEqualTo(entries.get(0));
        for (int i = 0; i < 3; i++) {
            assertThat(r.encodeBlock(i)).isEqualTo(entries.get(i + 1));
        }
    }
}
