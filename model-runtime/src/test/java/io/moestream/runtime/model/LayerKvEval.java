package io.moestream.runtime.model;

import io.moestream.runtime.SharedOracle;
import io.moestream.runtime.kv.KvCodec;
import io.moestream.runtime.kv.KvShape;
import io.moestream.runtime.kv.PagedKvCache;

import java.io.IOException;
import java.util.Arrays;

/**
 * The figures of docs/kv-cache.md "MLA latent and sliding-window layers", from the oracle's tiny
 * deepseek2 and gpt-oss files ({@code ../shared/oracle}):
 *
 * <ol>
 *   <li>bytes per token and layer of the deepseek2 latent in each codec (measured on sealed blocks)
 *       against the K+V copy it replaces and an fp16 per-head cache, and the same arithmetic for
 *       DeepSeek-V2-Lite / V2 / V3 shapes;</li>
 *   <li>the latent codecs against float32, teacher forced through the golden prompts;</li>
 *   <li>gpt-oss over a long context: KV bytes of the sliding layer and of the full layer as the
 *       sequence grows;</li>
 *   <li>deepseek2 decode speed over 1,900 cached positions, latent int8/32 against the K+V int8/16
 *       layout (the row stored twice, values grouped per token) and the float32 latent, in
 *       alternating rounds (a benchmark: read the ratios of one round).</li>
 * </ol>
 *
 * <pre>
 * java --add-modules jdk.incubator.vector -cp model-runtime/target/classes:model-runtime/target/test-classes:$(cat cp.txt) \
 *   io.moestream.runtime.model.LayerKvEval [--tokens 16384] [--codec int8]
 * </pre>
 */
public final class LayerKvEval {

    private LayerKvEval() {}

    public static void main(String[] args) throws IOException {
        int tokens = 16384;
        KvCodec codec = KvCodec.INT8;
        for (int i = 0; i + 1 < args.length; i += 2) {
            switch (args[i]) {
                case "--tokens" -> tokens = Integer.parseInt(args[i + 1]);
                case "--codec" -> codec = KvCodec.parse(args[i + 1]);
                default -> throw new IllegalArgumentException("unknown option " + args[i] + " (--tokens N, --codec C)");
            }
        }
        mlaBytes();
        latentAccuracy();
        slidingGrowth(tokens, codec);
        decodeSpeed();
    }

    static void decodeSpeed() throws IOException {
        System.out.println("== deepseek2 decode, 96 tokens after 1,900 cached positions (tok/s, rounds alternate) ==");
        try (Model m = Model.load(SharedOracle.model(LayerKvCacheTest.DEEPSEEK2))) {
            KvShape s = m.kvShape();
            KvShape twice = new KvShape(s.layers(), s.kvHeads(), s.headDim(), s.fingerprint());
            Engine engine = new Engine(m);
            int ctx = 1900;
            int[] ids = LayerKvCacheTest.tokens(ctx + 96, 9);
            String[] names = {"latent int8/32", "K+V int8/16", "latent f32"};
            for (int round = 0; round < 4; round++) {
                StringBuilder line = new StringBuilder("round " + round + ":");
                for (int k = 0; k < names.length; k++) {
                    KvCache cache = switch (k) {
                        case 0 -> m.newCache(KvCodec.INT8);
                        case 1 -> new KvCache(new PagedKvCache(twice, KvCodec.int8(16)), new int[0]);
                        default -> m.newCache();
                    };
                    for (int f = 0; f < ctx; f += 256) {
                        engine.forward(cache, Arrays.copyOfRange(ids, f, Math.min(ctx, f + 256)));
                    }
                    long t0 = System.nanoTime();
                    for (int i = 0; i < 96; i++) {
                        engine.forward(cache, new int[] {ids[ctx + i]});
                    }
                    line.append(String.format("  %s %.0f", names[k], 96 / ((System.nanoTime() - t0) / 1e9)));
                }
                System.out.println(line);
            }
        }
    }

    /** MLA shape: heads, kv_lora_rank, qk_rope, qk_nope, v_head_dim, layers. */
    record Mla(String name, int heads, int kvLora, int rope, int nope, int vHead, int layers) {
        int row() {
            return kvLora + rope;
        }

        /** fp16 per-head cache: every head's K (nope + rope) and V. */
        long perHeadF16() {
            return (long) heads * (nope + rope + vHead) * 2;
        }
    }

    static void mlaBytes() throws IOException {
        KvCodec[] codecs = {KvCodec.F32, KvCodec.F16, KvCodec.INT8, KvCodec.INT4};
        System.out.println("== deepseek2 latent: bytes per token and layer (sealed blocks, B = 32) ==");
        try (Model m = Model.load(SharedOracle.model(LayerKvCacheTest.DEEPSEEK2))) {
            ModelConfig c = m.config();
            Mla tiny = new Mla("tiny-deepseek2 (measured)", c.heads(), c.mla().kvLoraRank(), c.mla().qkRope(), c.mla().qkNope(),
                    c.mla().vHead(), c.layers());
            Engine engine = new Engine(m);
            int[] ids = LayerKvCacheTest.tokens(128, 4);
            StringBuilder row = new StringBuilder(String.format("%-28s", tiny.name()));
            for (KvCodec codec : codecs) {
                KvCache cache = m.newCache(codec);
                engine.forward(cache, ids);
                row.append(String.format(" %s %.1f", codec, (double) cache.paged().layerDataBytes(0) / ids.length));
            }
            System.out.println(row + String.format(" | K+V copy f32 %d | fp16 per-head %d", 2L * tiny.row() * 4, tiny.perHeadF16()));
            print(tiny, codecs);
        }
        // published hyperparameters (config.json of each model)
        print(new Mla("DeepSeek-V2-Lite", 16, 512, 64, 128, 128, 27), codecs);
        print(new Mla("DeepSeek-V2", 128, 512, 64, 128, 128, 60), codecs);
        print(new Mla("DeepSeek-V3", 128, 512, 64, 128, 128, 61), codecs);
    }

    private static void print(Mla s, KvCodec[] codecs) {
        StringBuilder row = new StringBuilder(String.format("%-28s row %d:", s.name(), s.row()));
        for (KvCodec codec : codecs) {
            long b = codec.sectionBytes(PagedKvCache.DEFAULT_BLOCK_TOKENS, s.row()) / PagedKvCache.DEFAULT_BLOCK_TOKENS;
            row.append(String.format(" %s %d (%.4fx)", codec, b, (double) b / s.perHeadF16()));
        }
        System.out.println(row + String.format(" | fp16 per-head %d B/token/layer, %d layers", s.perHeadF16(), s.layers()));
    }

    static void latentAccuracy() throws IOException {
        System.out.println("== deepseek2 latent codecs vs f32, teacher forced over the golden prompts + llama.cpp greedy tokens ==");
        for (KvCodec codec : new KvCodec[] {KvCodec.F16, KvCodec.INT8, KvCodec.int8(16), KvCodec.INT4}) {
            System.out.println(codec + ": " + LayerKvCacheTest.compareWithF32(LayerKvCacheTest.DEEPSEEK2, codec));
        }
    }

    static void slidingGrowth(int tokens, KvCodec codec) throws IOException {
        try (Model m = Model.load(SharedOracle.model(LayerKvCacheTest.GPT_OSS))) {
            ModelConfig c = m.config();
            System.out.printf("== gpt-oss (window %d, layer 0 sliding, layer 1 full), %s, B = %d: KV data bytes ==%n",
                    c.attention().window(), codec, PagedKvCache.DEFAULT_BLOCK_TOKENS);
            System.out.printf("%8s %14s %14s %16s %14s%n", "tokens", "sliding layer", "full layer", "state (all)", "s since last");
            Engine engine = new Engine(m);
            KvCache cache = m.newCache(codec);
            int[] ids = LayerKvCacheTest.tokens(tokens, 5);
            int report = 1024;
            long start = System.nanoTime();
            for (int from = 0; from < tokens; from += 256) {
                engine.forward(cache, Arrays.copyOfRange(ids, from, Math.min(tokens, from + 256)));
                if (cache.length() >= report || cache.length() == tokens) {
                    PagedKvCache p = cache.paged();
                    System.out.printf("%8d %14d %14d %16d %14.1f%n", cache.length(), p.layerDataBytes(0), p.layerDataBytes(1),
                            p.stateBytes(), (System.nanoTime() - start) / 1e9);
                    start = System.nanoTime();
                    report *= 2;
                }
            }
            KvShape s = cache.paged().shape();
            System.out.printf("sliding layer per position at %d tokens: %.2f B; full layer: %.2f B%n", tokens,
                    (double) cache.paged().layerDataBytes(0) / tokens, (double) cache.paged().layerDataBytes(1) / tokens);
            System.out.println("shape " + s);
        }
    }
}
