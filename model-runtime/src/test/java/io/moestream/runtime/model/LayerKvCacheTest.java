package io.moestream.runtime.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import io.moestream.runtime.Fixtures;
import io.moestream.runtime.SharedOracle;
import io.moestream.runtime.kv.KvCodec;
import io.moestream.runtime.kv.KvShape;
import io.moestream.runtime.kv.PagedKvCache;
import io.moestream.runtime.sampler.Sampler;

import java.io.IOException;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;

/**
 * The KV cache of the oracle's deepseek2 (MLA) and gpt-oss (sinks, sliding-window layers) models:
 * the latent row is cached once and its int8 codec stays close to float32; sliding layers keep only
 * their window without changing a logit bit; a context saved to and restored from keyed state the
 * way the operator does it continues bit for bit. Skipped without {@code ../shared/oracle}.
 */
class LayerKvCacheTest {

    static final String DEEPSEEK2 = "tiny-deepseek2-f32";
    static final String GPT_OSS = "tiny-gpt-oss-f32";

    @Test
    void mlaCachesTheLatentRowOncePerPositionAndLayer() throws IOException {
        try (Model m = Model.load(SharedOracle.model(DEEPSEEK2))) {
            ModelConfig c = m.config();
            KvShape shape = m.kvShape();
            assertThat(shape.latent()).isTrue();
            assertThat(shape.kvHeads()).isEqualTo(1);
            assertThat(shape.headDim()).isEqualTo(c.mla().kvLoraRank() + c.mla().qkRope());
            int[] ids = tokens(70, 1);
            Engine engine = new Engine(m);
            KvCache f32 = m.newCache();
            engine.forward(f32, ids);
            KvCache int8 = m.newCache(KvCodec.INT8);
            engine.forward(int8, ids);
            for (int l = 0; l < c.layers(); l++) {
                // float32: 80 floats per position, no value copy
                assertThat(f32.paged().layerDataBytes(l)).isEqualTo(70L * shape.headDim() * 4);
                // int8/32 (G need not divide the 80-wide row): two sealed blocks of codes plus one f16
                // scale and min per channel and block, then the float32 tail of 6 positions
                assertThat(int8.paged().layerDataBytes(l)).isEqualTo(2L * (32 * 80 + 4 * 80) + 6L * 80 * 4);
            }
        }
    }

    /**
     * The int8 and f16 latents against the float32 one, teacher forced through every oracle prompt and
     * its llama.cpp greedy continuation. The tiny model's random weights make its logits (up to ~47)
     * very sensitive: llama.cpp's own Q8_0 weights move them by 1.2-11 (oracle README), so the bounds
     * are on agreement and the mean change, with room over the measured figures (docs/kv-cache.md:
     * int8/32 96 % top-1, mean |dlogit| 0.15; f16 100 %, max 0.055).
     */
    @Test
    void int8LatentStaysCloseToFloat32() throws IOException {
        Comparison int8 = compareWithF32(DEEPSEEK2, KvCodec.INT8);
        System.out.println("deepseek2 latent int8/32 vs f32: " + int8);
        assertThat(int8.positions).isGreaterThan(600);
        assertThat(int8.quantizedPositions).isGreaterThan(400);
        assertThat(int8.top1Agreement()).isGreaterThanOrEqualTo(0.93);
        assertThat(int8.meanAbs()).isLessThan(0.25);
        Comparison f16 = compareWithF32(DEEPSEEK2, KvCodec.F16);
        System.out.println("deepseek2 latent f16 vs f32: " + f16);
        assertThat(f16.top1Agreement()).isEqualTo(1.0);
        assertThat(f16.maxAbs).isLessThan(0.2);
        assertThat(int8.meanAbs()).as("int8 is coarser than f16").isGreaterThan(f16.meanAbs());
    }

    /** Teacher-forced logits of the golden prompts and greedy tokens with a {@code codec} cache against an F32 cache. */
    static Comparison compareWithF32(String stem, KvCodec codec) throws IOException {
        JsonNode golden = SharedOracle.golden(stem);
        Comparison r = new Comparison();
        try (Model m = Model.load(SharedOracle.model(stem))) {
            Engine engine = new Engine(m);
            for (JsonNode prompt : golden.get("prompts")) {
                int[] prompt0 = Fixtures.ints(prompt.get("token_ids"));
                int[] greedy = Fixtures.ints(prompt.get("greedy_ids"));
                int[] all = Arrays.copyOf(prompt0, prompt0.length + greedy.length);
                System.arraycopy(greedy, 0, all, prompt0.length, greedy.length);
                KvCache exact = m.newCache();
                KvCache coded = m.newCache(codec);
                for (int pos = 0; pos < all.length; pos++) {
                    float[] want = engine.forward(exact, new int[] {all[pos]});
                    float[] got = engine.forward(coded, new int[] {all[pos]});
                    r.add(want, got, pos >= PagedKvCache.DEFAULT_BLOCK_TOKENS);
                }
            }
        }
        return r;
    }

    /** Logit differences between two runs, position by position. */
    static final class Comparison {
        int positions;
        int quantizedPositions;
        int sameTop1;
        double maxAbs;
        double sumAbs;
        long logits;

        void add(float[] want, float[] got, boolean quantized) {
            positions++;
            quantizedPositions += quantized ? 1 : 0;
            sameTop1 += Sampler.argmax(want) == Sampler.argmax(got) ? 1 : 0;
            for (int i = 0; i < want.length; i++) {
                double d = Math.abs(want[i] - got[i]);
                maxAbs = Math.max(maxAbs, d);
                sumAbs += d;
            }
            logits += want.length;
        }

        double top1Agreement() {
            return (double) sameTop1 / positions;
        }

        double meanAbs() {
            return sumAbs / logits;
        }

        @Override
        public String toString() {
            return String.format("%d positions (%d after a sealed block), top-1 agreement %.4f, max |dlogit| %.4f, mean |dlogit| %.2e",
                    positions, quantizedPositions, top1Agreement(), maxAbs, meanAbs());
        }
    }

    /**
     * gpt-oss over 1,200 positions: the sliding layer (window 16) holds at most the window plus two
     * blocks, the full layer every position, and the logits are bit for bit those of a cache that
     * keeps every position of every layer.
     */
    @Test
    void slidingLayersKeepOnlyTheirWindowWithIdenticalLogits() throws IOException {
        try (Model m = Model.load(SharedOracle.model(GPT_OSS))) {
            ModelConfig c = m.config();
            KvShape shape = m.kvShape();
            assertThat(c.isSlidingLayer(0)).isTrue();
            assertThat(c.isSlidingLayer(1)).isFalse();
            for (int l = 0; l < c.layers(); l++) {
                assertThat(shape.attention().slides(l)).isEqualTo(c.isSlidingLayer(l));
            }
            int window = c.attention().window();
            Engine engine = new Engine(m);
            KvCache windowed = m.newCache();
            // the same model's cache with no layer marked sliding: it keeps everything
            KvShape everything = new KvShape(shape.layers(), shape.kvHeads(), shape.headDim(), shape.fingerprint());
            KvCache full = new KvCache(new PagedKvCache(everything, KvCodec.F32), new int[0]);
            int[] ids = tokens(1200, 2);
            long perPosition = (long) c.kvDim() * 2 * 4;
            long bound = (window + 2L * PagedKvCache.DEFAULT_BLOCK_TOKENS) * perPosition;
            for (int from = 0; from < ids.length; ) {
                int n = from < 600 ? 200 : 1; // prefill in chunks, then decode
                int[] chunk = Arrays.copyOfRange(ids, from, from + n);
                float[] a = engine.forward(windowed, chunk);
                float[] b = engine.forward(full, chunk);
                assertThat(a).as("logits after position %d", from + n - 1).containsExactly(b);
                from += n;
                if (from % 100 == 0) {
                    assertThat(windowed.paged().layerDataBytes(0)).as("sliding layer at %d", from).isLessThanOrEqualTo(bound);
                    assertThat(windowed.paged().layerDataBytes(1)).isEqualTo(from * perPosition);
                    assertThat(full.paged().layerDataBytes(0)).isEqualTo(from * perPosition);
                }
            }
            assertThat(windowed.sizeBytes()).isLessThan(full.sizeBytes() * 6 / 10);
        }
    }

    /** Sliding layers and sinks (gpt-oss) and the MLA latent (deepseek2), float32 and int8, restored from keyed state. */
    @Test
    void contextsRestoredFromKeyedStateContinueBitForBit() throws IOException {
        for (String stem : new String[] {GPT_OSS, DEEPSEEK2}) {
            try (Model m = Model.load(SharedOracle.model(stem))) {
                for (KvCodec codec : new KvCodec[] {KvCodec.F32, KvCodec.INT8}) {
                    restoredContinuesLikeTheOriginal(m, codec, stem + " " + codec);
                }
            }
        }
    }

    private static void restoredContinuesLikeTheOriginal(Model m, KvCodec codec, String what) {
        Engine engine = new Engine(m);
        int[] ids = tokens(150, 3);
        KvCache live = m.newCache(codec);
        Map<Integer, byte[]> blocks = new HashMap<>();
        byte[] meta = null;
        // three turns, each stored as the operator's ContextStore does: dirty blocks, then the metadata
        for (int[] turn : new int[][] {{0, 41}, {41, 97}, {97, 150}}) {
            engine.forward(live, Arrays.copyOfRange(ids, turn[0], turn[1]));
            for (int i : live.paged().dirtyBlocks()) {
                blocks.put(i, live.paged().encodeBlock(i));
            }
            live.paged().markClean();
            meta = live.paged().encodeMeta();
        }
        KvCache restored = KvCache.restore(m, live.tokens(), meta, blocks::get);
        assertThat(restored.paged().stateBytes()).isEqualTo(live.paged().stateBytes());
        // both continue greedily from the same next token: identical tokens and logit bits
        int next = ids[149];
        int[] a = {next};
        int[] b = {next};
        for (int step = 0; step < 40; step++) {
            float[] x = engine.forward(live, a);
            float[] y = engine.forward(restored, b);
            assertThat(y).as("%s step %d", what, step).containsExactly(x);
            a = new int[] {Sampler.argmax(x)};
            b = new int[] {Sampler.argmax(y)};
        }
        assertThat(restored.tokens()).isEqualTo(live.tokens());
        if (m.kvShape().attention().window() > 0) {
            assertThat(restored.paged().block(0).holds(0, 0, m.config().kvHeads())).as("%s: sliding layer of block 0", what).isFalse();
            assertThatThrownBy(() -> restored.truncate(40)).isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("sliding-window layers");
            assertThat(restored.truncatable(40)).isFalse();
        }
    }

    /** A deterministic token sequence over the tiny models' 768-token vocabulary (BOS first). */
    static int[] tokens(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] ids = new int[n];
        ids[0] = 1;
        for (int i = 1; i < n; i++) {
            ids[i] = 3 + r.nextInt(760);
        }
        return ids;
    }
}
