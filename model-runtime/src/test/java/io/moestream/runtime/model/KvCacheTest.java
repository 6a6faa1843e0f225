package io.moestream.runtime.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moestream.runtime.Fixtures;

import java.io.IOException;
import io.moestream.runtime.kv.KvCodec;

import java.util.Arrays;
import java.util.List;

import org.junit.jupiter.api.Test;

class KvCacheTest {

    @Test
    void bytesRoundTripExactlyAndResumeIdentically() throws IOException {
        Model model = Model.load(Fixtures.model(Fixtures.TINY_MIXTRAL));
        Engine engine = new Engine(model);
        int[] prompt = model.tokenizer().encodePrompt("Once upon a time, there was");
        KvCache cache = model.newCache();
        engine.forward(cache, prompt);
        assertThat(cache.length()).isEqualTo(prompt.length);

        byte[] bytes = cache.toBytes();
        assertThat(cache.sizeBytes()).isEqualTo(cache.paged().stateBytes() + 4L * prompt.length);
        KvCache back = model.cacheFromBytes(bytes);
        assertThat(back.length()).isEqualTo(cache.length());
        assertThat(back.tokens()).containsExactly(prompt);
        assertThat(back.toBytes()).isEqualTo(bytes);

        float[] fromOriginal = engine.forward(cache, new int[] {32, 116});
        float[] fromRestored = engine.forward(back, new int[] {32, 116});
        assertThat(fromRestored).containsExactly(fromOriginal);
    }

    @Test
    void copyIsIndependent() throws IOException {
        Model model = Model.load(Fixtures.model(Fixtures.TINY_LLAMA));
        Engine engine = new Engine(model);
        KvCache doc = model.newCache();
        engine.forward(doc, new int[] {766, 84, 444});
        byte[] before = doc.toBytes();
        KvCache copy = doc.copy();
        engine.forward(copy, new int[] {32, 33});
        assertThat(copy.length()).isEqualTo(5);
        assertThat(doc.length()).isEqualTo(3);
        assertThat(doc.toBytes()).isEqualTo(before);
    }

    @Test
    void foreignOrCorruptBytesFailClearly() throws IOException {
        Model llama = Model.load(Fixtures.model(Fixtures.TINY_LLAMA));
        KvCache c = llama.newCache();
        new Engine(llama).forward(c, new int[] {766, 84});
        byte[] bytes = c.toBytes();
        assertThat(llama.newCache().toBytes()).hasSize(16 + llama.newCache().paged().encodeMeta().length);

        byte[] badMagic = bytes.clone();
        badMagic[0] = 0;
        assertThatThrownBy(() -> llama.cacheFromBytes(badMagic)).hasMessageContaining("not a KV cache");
        byte[] badVersion = bytes.clone();
        badVersion[7] = 9;
        assertThatThrownBy(() -> llama.cacheFromBytes(badVersion)).hasMessageContaining("version 9");
        Model mixtral = Model.load(Fixtures.model(Fixtures.TINY_MIXTRAL));
        assertThatThrownBy(() -> mixtral.cacheFromBytes(bytes)).hasMessageContaining("another model");
        assertThatThrownBy(() -> llama.cacheFromBytes(Arrays.copyOf(bytes, bytes.length - 4))).hasMessageContaining("truncated");
        byte[] flipped = bytes.clone();
        flipped[bytes.length - 10] ^= 1;
        assertThatThrownBy(() -> llama.cacheFromBytes(flipped)).hasMessageContaining("CRC");
        assertThatThrownBy(() -> llama.cacheFromBytes(new byte[3])).hasMessageContaining("too short");
    }

    /** Version 1 arrays (uncompressed floats, before the paged cache) read back as an F32 cache with the same values. */
    @Test
    void version1BytesStillRead() throws IOException {
        Model model = Model.load(Fixtures.model(Fixtures.TINY_MIXTRAL));
        Engine engine = new Engine(model);
        int[] prompt = model.tokenizer().encodePrompt("Once upon a time, there was");
        KvCache cache = model.newCache();
        engine.forward(cache, prompt);
        ModelConfig c = model.config();
        int n = cache.length();
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(20 + 4 * n + 2 * c.layers() * n * c.kvDim() * 4);
        b.putInt(KvCache.MAGIC).putInt(1).putInt(c.layers()).putInt(c.kvDim()).putInt(n);
        for (int t : prompt) {
            b.putInt(t);
        }
        int hd = c.headDim();
        for (int l = 0; l < c.layers(); l++) {
            float[][] k = new float[c.kvHeads()][n * hd];
            float[][] v = new float[c.kvHeads()][n * hd];
            for (int h = 0; h < c.kvHeads(); h++) {
                cache.paged().dequantize(l, h, k[h], v[h]);
            }
            for (float[][] kv : new float[][][] {k, v}) {
                for (int p = 0; p < n; p++) {
                    for (int h = 0; h < c.kvHeads(); h++) {
                        for (int i = 0; i < hd; i++) {
                            b.putFloat(kv[h][p * hd + i]);
                        }
                    }
                }
            }
        }
        KvCache back = model.cacheFromBytes(b.array());
        assertThat(back.tokens()).containsExactly(prompt);
        assertThat(back.toBytes()).isEqualTo(cache.toBytes());
    }

    @Test
    void compressedCodecsRoundTrip() throws IOException {
        Model model = Model.load(Fixtures.model(Fixtures.TINY_MIXTRAL));
        Engine engine = new Engine(model);
        int[] prompt = model.tokenizer().encodePrompt("Once upon a time, there was a little girl who liked to play outside in the sun");
        for (KvCodec codec : List.of(KvCodec.F16, KvCodec.int8(8), KvCodec.int4(8))) {
            KvCache cache = model.newCache(codec, 8);
            engine.forward(cache, prompt);
            KvCache back = model.cacheFromBytes(cache.toBytes());
            assertThat(back.codec()).isEqualTo(codec);
            assertThat(back.toBytes()).isEqualTo(cache.toBytes());
            assertThat(engine.forward(back, new int[] {32})).containsExactly(engine.forward(cache, new int[] {32}));
        }
    }
}
