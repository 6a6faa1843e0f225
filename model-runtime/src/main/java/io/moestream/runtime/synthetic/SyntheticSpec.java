package io.moestream.runtime.synthetic;

import java.util.Locale;

/**
 * Shape and initialisation of a random Mixtral-style {@code llama} model (experts = 0 gives a dense
 * one). Initialisation follows the oracle generator: linear weights N(0,1) * gain / sqrt(fan_in)
 * (q/k and router gain 2, output gain {@code outputGain}, others 1), embeddings N(0,1), norm weights
 * 1 + U(-0.1, 0.1).
 *
 * @param name          {@code general.name}
 * @param dim           n_embd
 * @param layers        block count
 * @param heads         query heads
 * @param kvHeads       key/value heads
 * @param headDim       width of one head
 * @param ffnDim        dense FFN width, or expert width for MoE
 * @param experts       experts per layer (0 = dense)
 * @param expertsUsed   experts per token
 * @param contextLength context_length
 * @param ropeBase      rope.freq_base
 * @param outputGain    gain of output.weight
 * @param seed          random seed; the same spec and seed give the same bytes
 */
public record SyntheticSpec(
        String name,
        int dim,
        int layers,
        int heads,
        int kvHeads,
        int headDim,
        int ffnDim,
        int experts,
        int expertsUsed,
        int contextLength,
        float ropeBase,
        float outputGain,
        long seed) {

    /** The oracle's tiny-mixtral shape: 2 layers, n_embd 128, 8 experts of width 256, top-2. */
    public static SyntheticSpec tiny(long seed) {
        return new SyntheticSpec("synthetic-tiny", 128, 2, 4, 2, 32, 256, 8, 2, 2048, 1e6f, 10f, seed);
    }

    /** About 13.5 M parameters (54 MB F32, 14 MB Q8_0): 4 layers, n_embd 256, 8 experts of width 512. */
    public static SyntheticSpec small(long seed) {
        return new SyntheticSpec("synthetic-small", 256, 4, 8, 2, 32, 512, 8, 2, 4096, 1e6f, 10f, seed);
    }

    /** The oracle's bench-moe recipe: 892.5 M parameters, n_embd 2048, 8 layers, 8 experts of width 2048, top-2. */
    public static SyntheticSpec bench(long seed) {
        return new SyntheticSpec("bench-moe", 2048, 8, 16, 4, 128, 2048, 8, 2, 4096, 1e6f, 3f, seed);
    }

    /**
     * The tiny shape with a long context: 33,280 positions, room for a 32,768-token document and a
     * question with its answer (long-document runs, benchmarks/run-long-document.sh).
     */
    public static SyntheticSpec longContext(long seed) {
        return new SyntheticSpec("synthetic-long", 128, 2, 4, 2, 32, 256, 8, 2, 32_768 + 512, 1e6f, 10f, seed);
    }

    /** A preset by name: tiny, small, bench or long. */
    public static SyntheticSpec preset(String name, long seed) {
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "tiny" -> tiny(seed);
            case "small" -> small(seed);
            case "bench" -> bench(seed);
            case "long" -> longContext(seed);
            default -> throw new IllegalArgumentException("unknown preset '" + name + "' (tiny, small, bench, long)");
        };
    }

    /** Total parameter count (vocab 768). */
    public long parameters() {
        long v = SyntheticModels.VOCAB_SIZE;
        long attn = (long) dim * heads * headDim * 2 + (long) dim * kvHeads * headDim * 2;
        long ffn = experts > 0 ? 3L * dim * ffnDim * experts + (long) dim * experts : 3L * dim * ffnDim;
        return 2 * v * dim + dim + layers * (attn + ffn + 2L * dim);
    }
}
