package io.moestream.runtime.gguf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import io.moestream.runtime.Fixtures;
import io.moestream.runtime.model.Engine;
import io.moestream.runtime.model.Model;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Seeded mutation of real GGUF files of every weight type and architecture (the in-repo Q8_0/Q4_0
 * copies, and from ../shared/oracle when present: the K-quants and their mixes, Q5_0 fallbacks,
 * IQ4_NL, MXFP4, BF16, deepseek2 MLA, gpt-oss sinks/window/YaRN, granite multipliers, olmoe, the
 * SentencePiece vocabulary): truncations, every numeric metadata value set to absurd values (0,
 * negative, huge, NaN), value types changed, array lengths changed, tensor dims/types/offsets changed,
 * random header bytes flipped. Each mutated file must either load (and then run a forward step) or
 * fail with a {@link GgufFormatException} or {@link IllegalArgumentException} with a message, within
 * a bounded time: never an {@link Error} (out of memory, stack overflow), an unchecked arithmetic,
 * index or null-pointer exception, or a hang. Where the mutation keeps the byte layout (a value of
 * the same size, a tensor's dims, type or offset) the message must name the key or a tensor; a
 * mutation that changes sizes desynchronizes everything after it, and the message then names the
 * position and the last key read before it.
 */
class GgufFuzzTest {

    /** Mutations per file and kind (the seed is fixed, so runs are reproducible). */
    static final int PER_KIND = 40;
    static final Duration LIMIT = Duration.ofSeconds(30);

    @TempDir Path tmp;
    private final List<String> problems = new ArrayList<>();

    /** One metadata entry or tensor info of a file's header, with the byte offsets a mutation patches. */
    record Kv(String key, int type, int typeAt, int valueAt, int elemType, long count) {}

    record Info(String name, int ndimsAt, int[] dimAt, int typeAt, int offsetAt) {}

    record Header(List<Kv> kvs, List<Info> tensors, int end) {}

    /** Walks a GGUF v3 header (the layout, independent of {@link GgufFile}'s reader). */
    static Header walk(byte[] f) {
        ByteBuffer b = ByteBuffer.wrap(f).order(ByteOrder.LITTLE_ENDIAN);
        b.position(8);
        long tensors = b.getLong();
        long kvs = b.getLong();
        List<Kv> out = new ArrayList<>();
        for (long i = 0; i < kvs; i++) {
            String key = str(b);
            int typeAt = b.position();
            int type = b.getInt();
            int valueAt = b.position();
            int elem = -1;
            long count = 1;
            if (type == 9) {
                elem = b.getInt();
                count = b.getLong();
                for (long j = 0; j < count; j++) {
                    skip(b, elem);
                }
            } else {
                skip(b, type);
            }
            out.add(new Kv(key, type, typeAt, valueAt, elem, count));
        }
        List<Info> infos = new ArrayList<>();
        for (long i = 0; i < tensors; i++) {
            String name = str(b);
            int ndimsAt = b.position();
            int n = b.getInt();
            int[] dims = new int[n];
            for (int d = 0; d < n; d++) {
                dims[d] = b.position();
                b.getLong();
            }
            int typeAt = b.position();
            b.getInt();
            int offsetAt = b.position();
            b.getLong();
            infos.add(new Info(name, ndimsAt, dims, typeAt, offsetAt));
        }
        return new Header(out, infos, b.position());
    }

    /** Bytes of a scalar value type, 0 for strings, arrays and unknown types. */
    static int size(int type) {
        return switch (type) {
            case 0, 1, 7 -> 1;
            case 2, 3 -> 2;
            case 4, 5, 6 -> 4;
            case 10, 11, 12 -> 8;
            default -> 0;
        };
    }

    static String str(ByteBuffer b) {
        byte[] s = new byte[(int) b.getLong()];
        b.get(s);
        return new String(s, StandardCharsets.UTF_8);
    }

    static void skip(ByteBuffer b, int type) {
        switch (type) {
            case 0, 1, 7 -> b.get();
            case 2, 3 -> b.getShort();
            case 4, 5, 6 -> b.getInt();
            case 10, 11, 12 -> b.getLong();
            case 8 -> {
                int len = (int) b.getLong();
                b.position(b.position() + len);
            }
            default -> throw new IllegalStateException("value type " + type);
        }
    }

    /** The outcome of loading one mutated file, checked; a bad outcome is collected in {@link #problems}. */
    void check(byte[] bytes, String what, String... names) throws IOException {
        Path p = tmp.resolve("m.gguf");
        Files.write(p, bytes);
        Throwable thrown = assertTimeoutPreemptively(LIMIT, () -> {
            try (Model m = Model.load(p)) {
                int[] ids = {1, 2, 3};
                new Engine(m).forward(m.newCache(), ids);
                return null;
            } catch (GgufFormatException | IllegalArgumentException | UnsupportedOperationException e) {
                return e;
            } catch (IOException e) {
                return e;
            } catch (Throwable e) { // NOPMD: anything else is the failure this test looks for
                return new AssertionError(what + ": " + e, e);
            }
        }, what);
        if (thrown == null) {
            return;
        }
        if (thrown instanceof AssertionError a) {
            problems.add(a.getMessage() + " at " + a.getCause().getStackTrace()[0]);
            return;
        }
        String msg = String.valueOf(thrown.getMessage());
        if (msg.isBlank() || msg.contains("null")) {
            problems.add(what + ": unclear message " + thrown);
        } else if (names.length > 0 && thrown instanceof GgufFormatException && !names(msg, names)) {
            problems.add(what + ": the message names none of " + Arrays.toString(names) + ": " + msg);
        }
    }

    /**
     * Whether the message names the mutated key (in full, or by its last component, e.g. {@code head_count}
     * for {@code llama.attention.head_count}), the mutated tensor, or a tensor whose shape the value
     * contradicts.
     */
    static boolean names(String msg, String... names) {
        for (String n : names) {
            if (msg.contains(n) || msg.contains(n.substring(n.lastIndexOf('.') + 1)) || msg.contains("tensor '")) {
                return true;
            }
        }
        return false;
    }

    @ParameterizedTest
    @ValueSource(strings = {"tiny-mixtral-q4_0", "tiny-groupmoe-q8_0", "tiny-qwen2moe-q8_0", "tiny-kmoe-q2_k", "tiny-kmoe-q3_k",
        "tiny-kmoe-q4_k_m", "tiny-kmoe-q5_k_m", "tiny-kmoe-q6_k", "tiny-kmoe-iq4_nl", "tiny-kmoe-bf16", "tiny-gpt-oss-mxfp4",
        "tiny-deepseek2-q4_k_m", "tiny-granitemoe-q4_k_m", "tiny-olmoe-q4_k_m", "tiny-spm-mixtral-q8_0", "tiny-kqwen3moe-q4_k_m"})
    void mutatedFilesLoadOrFailClearly(String stem) throws IOException {
        Path src = Fixtures.model(stem); // skipped where ../shared/oracle is absent
        byte[] orig = Files.readAllBytes(src);
        Header h = walk(orig);
        Random r = new Random(stem.hashCode());

        // truncations: in the header, at its end, in the data
        for (int i = 0; i < PER_KIND / 4; i++) {
            int len = i % 2 == 0 ? r.nextInt(h.end()) : h.end() + r.nextInt(orig.length - h.end());
            check(Arrays.copyOf(orig, len), stem + " cut to " + len);
        }

        // numeric metadata values: 0, -1, huge, NaN, negative, the count of another key
        List<Kv> numeric = h.kvs().stream().filter(k -> k.type() >= 0 && k.type() <= 6 || k.type() >= 10).toList();
        for (Kv k : numeric) {
            for (long v : new long[] {0, -1, 1L << 31, 1L << 40, 3, 7}) {
                byte[] m = orig.clone();
                ByteBuffer b = ByteBuffer.wrap(m).order(ByteOrder.LITTLE_ENDIAN);
                switch (k.type()) {
                    case 0, 1 -> b.put(k.valueAt(), (byte) v);
                    case 2, 3 -> b.putShort(k.valueAt(), (short) v);
                    case 4, 5 -> b.putInt(k.valueAt(), (int) v);
                    case 6 -> b.putFloat(k.valueAt(), v == 7 ? Float.NaN : v == 3 ? -4f : v == -1 ? Float.POSITIVE_INFINITY : (float) v);
                    case 10, 11 -> b.putLong(k.valueAt(), v);
                    default -> b.putDouble(k.valueAt(), v == 7 ? Double.NaN : (double) v);
                }
                check(m, stem + " " + k.key() + " = " + v, k.key());
            }
        }

        // value types changed: same-size (u32 <-> i32 <-> f32, bool <-> u8) and other-size types
        for (int i = 0; i < PER_KIND; i++) {
            Kv k = h.kvs().get(r.nextInt(h.kvs().size()));
            int to = new int[] {0, 4, 5, 6, 7, 8, 9, 10, 12, 13, 99}[r.nextInt(11)];
            byte[] m = orig.clone();
            ByteBuffer.wrap(m).order(ByteOrder.LITTLE_ENDIAN).putInt(k.typeAt(), to);
            boolean sameSize = size(k.type()) > 0 && size(k.type()) == size(to);
            check(m, stem + " " + k.key() + " type " + k.type() + " -> " + to, sameSize ? new String[] {k.key()} : new String[0]);
        }

        // array lengths (tokens, scores, token types, merges, per-layer arrays): one fewer, one more, huge
        for (Kv k : h.kvs().stream().filter(k -> k.type() == 9).toList()) {
            for (long c : new long[] {k.count() - 1, k.count() + 1, 0, 1L << 33, -1}) {
                byte[] m = orig.clone();
                ByteBuffer.wrap(m).order(ByteOrder.LITTLE_ENDIAN).putLong(k.valueAt() + 4, c);
                check(m, stem + " " + k.key() + " length " + k.count() + " -> " + c); // desynchronizes what follows
            }
            byte[] m = orig.clone(); // element type changed
            ByteBuffer.wrap(m).order(ByteOrder.LITTLE_ENDIAN).putInt(k.valueAt(), k.elemType() == 8 ? 4 : 8);
            check(m, stem + " " + k.key() + " element type");
        }

        // array elements in place (token types, scores, per-layer values, token texts such as the
        // byte-fallback "<0xXX>" pieces): absurd numbers, bytes of strings changed at the same length
        for (Kv k : h.kvs().stream().filter(k -> k.type() == 9 && k.count() > 0).toList()) {
            for (int i = 0; i < 4; i++) {
                byte[] m = orig.clone();
                ByteBuffer b = ByteBuffer.wrap(m).order(ByteOrder.LITTLE_ENDIAN);
                int first = k.valueAt() + 12;
                int at = (int) r.nextInt((int) Math.min(k.count(), Integer.MAX_VALUE));
                String what;
                switch (k.elemType()) {
                    case 4, 5 -> {
                        int v = new int[] {-1, 99, Integer.MIN_VALUE, 1 << 30}[i];
                        b.putInt(first + 4 * at, v);
                        what = "[" + at + "] = " + v;
                    }
                    case 6 -> {
                        float v = new float[] {Float.NaN, Float.NEGATIVE_INFINITY, 1e38f, -0f}[i];
                        b.putFloat(first + 4 * at, v);
                        what = "[" + at + "] = " + v;
                    }
                    case 8 -> {
                        int p = first;
                        for (int j = 0; j < at; j++) {
                            p += 8 + (int) b.getLong(p);
                        }
                        int len = (int) b.getLong(p);
                        if (len == 0) {
                            continue;
                        }
                        byte v = (byte) new int[] {0xFF, 0x00, '<', 0xC3}[i];
                        m[p + 8 + r.nextInt(len)] = v;
                        what = "[" + at + "] byte -> " + (v & 0xFF);
                    }
                    default -> {
                        continue;
                    }
                }
                check(m, stem + " " + k.key() + what);
            }
        }

        // tensor infos: dims, rank, type, offset
        for (int i = 0; i < PER_KIND; i++) {
            Info t = h.tensors().get(r.nextInt(h.tensors().size()));
            byte[] m = orig.clone();
            ByteBuffer b = ByteBuffer.wrap(m).order(ByteOrder.LITTLE_ENDIAN);
            String what;
            switch (i % 4) {
                case 0 -> {
                    int d = r.nextInt(t.dimAt().length);
                    long v = new long[] {0, -1, 1L << 40, b.getLong(t.dimAt()[d]) * 2, 3, Long.MAX_VALUE}[r.nextInt(6)];
                    b.putLong(t.dimAt()[d], v);
                    what = "dim " + d + " = " + v;
                }
                case 1 -> {
                    int v = new int[] {0, 5, -1, 1 << 20}[r.nextInt(4)];
                    b.putInt(t.ndimsAt(), v);
                    what = "rank " + v;
                }
                case 2 -> {
                    int v = new int[] {0, 1, 2, 6, 8, 10, 12, 14, 15, 20, 24, 30, 39, 99, -1}[r.nextInt(15)];
                    b.putInt(t.typeAt(), v);
                    what = "type " + v;
                }
                default -> {
                    long v = new long[] {1, -32, 1L << 50, Long.MIN_VALUE, b.getLong(t.offsetAt()) + 32}[r.nextInt(5)];
                    b.putLong(t.offsetAt(), v);
                    what = "offset " + v;
                }
            }
            check(m, stem + " tensor " + t.name() + " " + what, t.name());
        }

        // random header bytes
        for (int i = 0; i < PER_KIND; i++) {
            byte[] m = orig.clone();
            for (int j = 0; j < 1 + r.nextInt(4); j++) {
                m[24 + r.nextInt(h.end() - 24)] = (byte) r.nextInt(256);
            }
            check(m, stem + " random header bytes #" + i);
        }
        assertThat(problems).as(stem).isEmpty();
    }

    /**
     * Values no model can have are refused at load time, naming the key: sizes of 0, a window larger
     * than the context, groups that do not divide the experts, more experts (or groups) used than
     * exist, leading dense layers past the last layer, and non-finite or non-positive multipliers,
     * epsilons, RoPE bases and YaRN factors.
     */
    @ParameterizedTest
    @CsvSource({
        "tiny-gpt-oss-mxfp4, gpt-oss.attention.sliding_window, 200000",
        "tiny-gpt-oss-mxfp4, gpt-oss.expert_used_count, 9",
        "tiny-gpt-oss-mxfp4, gpt-oss.expert_used_count, 0",
        "tiny-gpt-oss-mxfp4, gpt-oss.rope.scaling.factor, 0",
        "tiny-gpt-oss-mxfp4, gpt-oss.rope.scaling.factor, NaN",
        "tiny-gpt-oss-mxfp4, gpt-oss.rope.scaling.original_context_length, 0",
        "tiny-gpt-oss-mxfp4, gpt-oss.rope.freq_base, 0",
        "tiny-gpt-oss-mxfp4, gpt-oss.rope.freq_base, NaN",
        "tiny-gpt-oss-mxfp4, gpt-oss.attention.layer_norm_rms_epsilon, NaN",
        "tiny-gpt-oss-mxfp4, gpt-oss.attention.layer_norm_rms_epsilon, -1",
        "tiny-gpt-oss-mxfp4, gpt-oss.expert_feed_forward_length, 0",
        "tiny-deepseek2-q4_k_m, deepseek2.expert_group_count, 3",
        "tiny-deepseek2-q4_k_m, deepseek2.expert_group_used_count, 5",
        "tiny-deepseek2-q4_k_m, deepseek2.expert_group_used_count, 0",
        "tiny-deepseek2-q4_k_m, deepseek2.attention.q_lora_rank, 0",
        "tiny-deepseek2-q4_k_m, deepseek2.attention.kv_lora_rank, 0",
        "tiny-deepseek2-q4_k_m, deepseek2.attention.key_length_mla, 0",
        "tiny-deepseek2-q4_k_m, deepseek2.leading_dense_block_count, 4",
        "tiny-deepseek2-q4_k_m, deepseek2.expert_weights_scale, NaN",
        "tiny-deepseek2-q4_k_m, deepseek2.expert_gating_func, 7",
        "tiny-granitemoe-q4_k_m, granitemoe.logit_scale, 0",
        "tiny-granitemoe-q4_k_m, granitemoe.logit_scale, NaN",
        "tiny-granitemoe-q4_k_m, granitemoe.embedding_scale, Infinity",
        "tiny-granitemoe-q4_k_m, granitemoe.residual_scale, NaN",
        "tiny-granitemoe-q4_k_m, granitemoe.attention.scale, -1",
        "tiny-kmoe-q4_k_m, llama.attention.head_count, 0",
        "tiny-kmoe-q4_k_m, llama.attention.head_count_kv, 0",
        "tiny-kmoe-q4_k_m, llama.expert_used_count, 9",
        "tiny-kmoe-q4_k_m, llama.context_length, 0",
        "tiny-spm-mixtral-q8_0, llama.vocab_size, 5",
    })
    void absurdValuesFailNamingTheKey(String stem, String key, String value) throws IOException {
        byte[] orig = Files.readAllBytes(Fixtures.model(stem));
        Kv k = walk(orig).kvs().stream().filter(e -> e.key().equals(key)).findFirst()
                .orElseThrow(() -> new AssertionError(stem + " has no key " + key));
        byte[] m = orig.clone();
        ByteBuffer b = ByteBuffer.wrap(m).order(ByteOrder.LITTLE_ENDIAN);
        switch (k.type()) {
            case 4, 5 -> b.putInt(k.valueAt(), Integer.parseInt(value));
            case 6 -> b.putFloat(k.valueAt(), Float.parseFloat(value));
            case 7 -> b.put(k.valueAt(), (byte) Integer.parseInt(value));
            default -> throw new AssertionError(key + " has value type " + k.type());
        }
        Path p = tmp.resolve("absurd.gguf");
        Files.write(p, m);
        String suffix = key.substring(key.lastIndexOf('.') + 1);
        assertTimeoutPreemptively(LIMIT, () -> assertThatThrownBy(() -> Model.load(p)).as(key + " = " + value)
                .isInstanceOf(GgufFormatException.class).hasMessageContaining(suffix));
    }
}
