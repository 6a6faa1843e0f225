package io.moestream.runtime.synthetic;

import io.moestream.runtime.gguf.GgmlType;
import io.moestream.runtime.gguf.GgufWriter;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Writes random-weight {@code llama} models (dense or Mixtral-style MoE) as GGUF with the oracle's
 * 768-token byte-level BPE tokenizer, for tests and benchmarks. Deterministic: each tensor draws
 * from its own generator seeded by the spec's seed and the tensor name, so one tensor's values do
 * not depend on which others exist. Norm vectors and the router are always F32 (as
 * {@code llama-quantize} leaves them); every other matrix gets the requested type.
 */
public final class SyntheticModels {

    /** Size of the bundled oracle vocabulary: 256 bytes, 510 merges, BOS, EOS. */
    public static final int VOCAB_SIZE = 768;

    private static final String TOKENS = "/io/moestream/runtime/synthetic/bpe768-tokens.txt";
    private static final String MERGES = "/io/moestream/runtime/synthetic/bpe768-merges.txt";

    private SyntheticModels() {}

    /** The ChatML template {@link #writeChat} stores (Qwen2.5 / Hermes style, without tools). */
    public static final String CHATML_TEMPLATE = "{% for message in messages %}"
            + "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
            + "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    /** Writes {@code spec} to {@code out} with matrices of {@code type} (F32, F16, BF16, Q8_0 or Q4_0). */
    public static void write(SyntheticSpec spec, GgmlType type, Path out) throws IOException {
        write(spec, type, out, List.of(), null);
    }

    /**
     * As {@link #write}, as an instruct model: the vocabulary gains the control tokens
     * {@code <|im_start|>} (768) and {@code <|im_end|>} (769, the declared EOT), and
     * {@code tokenizer.chat_template} holds {@link #CHATML_TEMPLATE}.
     */
    public static void writeChat(SyntheticSpec spec, GgmlType type, Path out) throws IOException {
        write(spec, type, out, List.of("<|im_start|>", "<|im_end|>"), CHATML_TEMPLATE);
    }

    private static void write(SyntheticSpec spec, GgmlType type, Path out, List<String> extraControl, String chatTemplate)
            throws IOException {
        List<String> tokens = new java.util.ArrayList<>(lines(TOKENS));
        List<String> merges = lines(MERGES);
        if (tokens.size() != VOCAB_SIZE) {
            throw new IllegalStateException("bundled vocabulary has " + tokens.size() + " tokens, expected " + VOCAB_SIZE);
        }
        tokens.addAll(extraControl);
        int vocab = tokens.size();
        int[] tokenTypes = new int[vocab];
        java.util.Arrays.fill(tokenTypes, 1);
        tokenTypes[766] = 3; // <|bos|>, CONTROL
        tokenTypes[767] = 3; // <|eos|>, CONTROL
        java.util.Arrays.fill(tokenTypes, VOCAB_SIZE, vocab, 3);

        String a = "llama.";
        GgufWriter w = new GgufWriter()
                .putString("general.architecture", "llama")
                .putString("general.name", spec.name())
                .putUInt32("general.file_type", fileType(type));
        if (type == GgmlType.Q8_0 || type == GgmlType.Q4_0) {
            w.putUInt32("general.quantization_version", 2);
        }
        w.putUInt32(a + "context_length", spec.contextLength())
                .putUInt32(a + "embedding_length", spec.dim())
                .putUInt32(a + "block_count", spec.layers())
                .putUInt32(a + "feed_forward_length", spec.ffnDim())
                .putUInt32(a + "attention.head_count", spec.heads())
                .putUInt32(a + "attention.head_count_kv", spec.kvHeads())
                .putFloat32(a + "rope.freq_base", spec.ropeBase())
                .putFloat32(a + "attention.layer_norm_rms_epsilon", 1e-5f)
                .putUInt32(a + "rope.dimension_count", spec.headDim())
                .putUInt32(a + "vocab_size", vocab);
        if (spec.heads() * spec.headDim() != spec.dim()) {
            w.putUInt32(a + "attention.key_length", spec.headDim()).putUInt32(a + "attention.value_length", spec.headDim());
        }
        if (spec.experts() > 0) {
            w.putUInt32(a + "expert_count", spec.experts()).putUInt32(a + "expert_used_count", spec.expertsUsed());
        }
        w.putString("tokenizer.ggml.model", "gpt2")
                .putString("tokenizer.ggml.pre", "gpt-2")
                .putStringArray("tokenizer.ggml.tokens", tokens)
                .putInt32Array("tokenizer.ggml.token_type", tokenTypes)
                .putStringArray("tokenizer.ggml.merges", merges)
                .putUInt32("tokenizer.ggml.bos_token_id", 766)
                .putUInt32("tokenizer.ggml.eos_token_id", 767)
                .putBool("tokenizer.ggml.add_bos_token", true)
                .putBool("tokenizer.ggml.add_eos_token", false);
        if (chatTemplate != null) {
            w.putString("tokenizer.chat_template", chatTemplate)
                    .putUInt32("tokenizer.ggml.eot_token_id", tokens.indexOf("<|im_end|>"));
        }

        int d = spec.dim();
        int q = spec.heads() * spec.headDim();
        int kv = spec.kvHeads() * spec.headDim();
        int f = spec.ffnDim();
        int e = spec.experts();
        long seed = spec.seed();
        w.addTensor("token_embd.weight", type, ne(d, vocab), gaussian(seed, "token_embd.weight", 1f));
        w.addTensor("output_norm.weight", GgmlType.F32, ne(d), norm(seed, "output_norm.weight"));
        w.addTensor("output.weight", type, ne(d, vocab), linear(seed, "output.weight", spec.outputGain(), d));
        for (int i = 0; i < spec.layers(); i++) {
            String b = "blk." + i + ".";
            w.addTensor(b + "attn_norm.weight", GgmlType.F32, ne(d), norm(seed, b + "attn_norm.weight"));
            w.addTensor(b + "attn_q.weight", type, ne(d, q), linear(seed, b + "attn_q.weight", 2f, d));
            w.addTensor(b + "attn_k.weight", type, ne(d, kv), linear(seed, b + "attn_k.weight", 2f, d));
            w.addTensor(b + "attn_v.weight", type, ne(d, kv), linear(seed, b + "attn_v.weight", 1f, d));
            w.addTensor(b + "attn_output.weight", type, ne(q, d), linear(seed, b + "attn_output.weight", 1f, q));
            w.addTensor(b + "ffn_norm.weight", GgmlType.F32, ne(d), norm(seed, b + "ffn_norm.weight"));
            if (e > 0) {
                w.addTensor(b + "ffn_gate_inp.weight", GgmlType.F32, ne(d, e), linear(seed, b + "ffn_gate_inp.weight", 2f, d));
                w.addTensor(b + "ffn_gate_exps.weight", type, ne(d, f, e), linear(seed, b + "ffn_gate_exps.weight", 1f, d));
                w.addTensor(b + "ffn_down_exps.weight", type, ne(f, d, e), linear(seed, b + "ffn_down_exps.weight", 1f, f));
                w.addTensor(b + "ffn_up_exps.weight", type, ne(d, f, e), linear(seed, b + "ffn_up_exps.weight", 1f, d));
            } else {
                w.addTensor(b + "ffn_gate.weight", type, ne(d, f), linear(seed, b + "ffn_gate.weight", 1f, d));
                w.addTensor(b + "ffn_down.weight", type, ne(f, d), linear(seed, b + "ffn_down.weight", 1f, f));
                w.addTensor(b + "ffn_up.weight", type, ne(d, f), linear(seed, b + "ffn_up.weight", 1f, d));
            }
        }
        w.write(out);
    }

    /** {@code general.file_type} (llama_ftype) of a model whose matrices are {@code type}. */
    static int fileType(GgmlType type) {
        return switch (type) {
            case F32 -> 0;
            case F16 -> 1;
            case Q4_0 -> 2;
            case Q8_0 -> 7;
            case BF16 -> 32;
            default -> throw new IllegalArgumentException("unsupported weight type " + type + " (F32, F16, BF16, Q8_0, Q4_0)");
        };
    }

    private static long[] ne(long... ne) {
        return ne;
    }

    private static SplittableRandom random(long seed, String tensor) {
        return new SplittableRandom(seed * 0x9E3779B97F4A7C15L + tensor.hashCode());
    }

    private static GgufWriter.RowSource gaussian(long seed, String tensor, float scale) {
        SplittableRandom r = random(seed, tensor);
        return (row, out) -> {
            for (int i = 0; i < out.length; i++) {
                out[i] = (float) r.nextGaussian() * scale;
            }
        };
    }

    private static GgufWriter.RowSource linear(long seed, String tensor, float gain, int fanIn) {
        return gaussian(seed, tensor, (float) (gain / Math.sqrt(fanIn)));
    }

    private static GgufWriter.RowSource norm(long seed, String tensor) {
        SplittableRandom r = random(seed, tensor);
        return (row, out) -> {
            for (int i = 0; i < out.length; i++) {
                out[i] = 1f + (float) (r.nextDouble() * 0.2 - 0.1);
            }
        };
    }

    private static List<String> lines(String resource) {
        try (InputStream in = SyntheticModels.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException("missing resource " + resource);
            }
            return new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8)).lines().toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
