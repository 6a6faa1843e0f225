package io.moestream.runtime.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moestream.runtime.Fixtures;

import java.io.IOException;
import java.util.Arrays;

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
        assertThat((long) bytes.length).isEqualTo(cache.sizeBytes());
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
        assertThat(llama.newCache().toBytes()).hasSize(20);

        byte[] badMagic = bytes.clone();
        badMagic[0] = 0;
        assertThatThrownBy(() -> llama.cacheFromBytes(badMagic)).hasMessageContaining("not a KV cache");
        byte[] badVersion = bytes.clone();
        badVersion[7] = 9;
        assertThatThrownBy(() -> llama.cacheFromBytes(badVersion)).hasMessageContaining("version 9");
        byte[] badDim = bytes.clone();
        badDim[15] = 1;
        assertThatThrownBy(() -> llama.cacheFromBytes(badDim)).hasMessageContaining("another model shape");
        assertThatThrownBy(() -> llama.cacheFromBytes(Arrays.copyOf(bytes, bytes.length - 4))).hasMessageContaining("wrong size");
        assertThatThrownBy(() -> llama.cacheFromBytes(new byte[3])).hasMessageContaining("too short");
    }
}
