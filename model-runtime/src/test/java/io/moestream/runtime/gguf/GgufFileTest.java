package io.moestream.runtime.gguf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moestream.runtime.Fixtures;
import io.moestream.runtime.model.Model;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class GgufFileTest {

    @TempDir Path tmp;

    /** The F32 file (from ../shared) and the Q8_0 copy in test resources: same metadata, their own tensor layout. */
    @ParameterizedTest
    @CsvSource({"tiny-mixtral-f32, F32, 1048576", "tiny-mixtral-q8_0, Q8_0, 278528"})
    void readsMetadataAndTensorsOfTinyMixtral(String stem, GgmlType gateType, int gateBytes) throws IOException {
        GgufFile f = GgufFile.open(Fixtures.model(stem));
        assertThat(f.version()).isEqualTo(3);
        assertThat(f.alignment()).isEqualTo(32);
        assertThat(f.getString("general.architecture")).isEqualTo("llama");
        assertThat(f.typeOf("llama.expert_count")).isEqualTo(GgufValueType.UINT32);
        assertThat(f.getInt("llama.expert_count")).isEqualTo(8);
        assertThat(f.getInt("llama.expert_used_count")).isEqualTo(2);
        assertThat(f.getDouble("llama.rope.freq_base")).isEqualTo(1e6);
        assertThat(f.getBoolean("tokenizer.ggml.add_bos_token", false)).isTrue();
        assertThat(f.getStringArray("tokenizer.ggml.tokens")).hasSize(768).endsWith("<|bos|>", "<|eos|>");
        assertThat(f.getStringArray("tokenizer.ggml.merges")).hasSize(510);
        assertThat(f.getIntegerArray("tokenizer.ggml.token_type")).hasSize(768);
        assertThat(f.tensors()).hasSize(23);
        GgufTensor gate = f.tensor("blk.1.ffn_gate_exps.weight");
        assertThat(gate.type()).isEqualTo(gateType);
        assertThat(gate.ne()).containsExactly(128, 256, 8);
        assertThat(gate.data().capacity()).isEqualTo(gateBytes);
        assertThat(f.tensor("blk.0.ffn_down_exps.weight").ne()).containsExactly(256, 128, 8);
        assertThat(f.tensor("token_embd.weight").ne()).containsExactly(128, 768);
        assertThat(f.tensor("output_norm.weight").ne()).containsExactly(128);
        assertThatThrownBy(() -> f.tensor("blk.9.attn_q.weight")).hasMessageContaining("missing tensor 'blk.9.attn_q.weight'");
        assertThatThrownBy(() -> f.getInt("llama.nope")).hasMessageContaining("missing required key 'llama.nope'");
        assertThatThrownBy(() -> f.getInt("general.architecture")).hasMessageContaining("should be an integer");
    }

    @Test
    void truncatedDataNamesTheTensor() throws IOException {
        byte[] all = Files.readAllBytes(Fixtures.model(Fixtures.TINY_LLAMA));
        Path cut = write("cut.gguf", Arrays.copyOf(all, all.length - 1000));
        assertThatThrownBy(() -> GgufFile.open(cut))
                .isInstanceOf(GgufFormatException.class)
                .hasMessageContaining("truncated")
                .hasMessageContaining("extends past the end of the file");
    }

    @Test
    void truncatedHeaderFailsClearly() throws IOException {
        byte[] all = Files.readAllBytes(Fixtures.model(Fixtures.TINY_LLAMA));
        for (int len : new int[] {0, 10, 30, 700, 5000, 12000}) {
            Path cut = write("cut" + len + ".gguf", Arrays.copyOf(all, len));
            assertThatThrownBy(() -> GgufFile.open(cut)).as("length " + len).isInstanceOf(GgufFormatException.class)
                    .hasMessageMatching("(?s).*(truncated|too short|bytes left).*");
        }
    }

    @Test
    void corruptCountsAndLengthsFailWithoutAllocating() throws IOException {
        byte[] all = Files.readAllBytes(Fixtures.model(Fixtures.TINY_LLAMA));
        byte[] badMagic = all.clone();
        badMagic[0] = 'X';
        assertThatThrownBy(() -> GgufFile.open(write("magic.gguf", badMagic))).hasMessageContaining("not a GGUF file");

        byte[] badVersion = all.clone();
        ByteBuffer.wrap(badVersion).order(ByteOrder.LITTLE_ENDIAN).putInt(4, 99);
        assertThatThrownBy(() -> GgufFile.open(write("version.gguf", badVersion))).hasMessageContaining("version 99");

        byte[] hugeKv = all.clone();
        ByteBuffer.wrap(hugeKv).order(ByteOrder.LITTLE_ENDIAN).putLong(16, Long.MAX_VALUE);
        assertThatThrownBy(() -> GgufFile.open(write("kv.gguf", hugeKv))).hasMessageContaining("metadata key/value count");

        byte[] hugeKey = all.clone();
        ByteBuffer.wrap(hugeKey).order(ByteOrder.LITTLE_ENDIAN).putLong(24, 1L << 40);
        assertThatThrownBy(() -> GgufFile.open(write("key.gguf", hugeKey))).hasMessageContaining("invalid string length");

        // the token array's count: find "tokenizer.ggml.tokens", skip type (4) + element type (4)
        byte[] hugeArray = all.clone();
        int at = indexOf(all, "tokenizer.ggml.tokens".getBytes()) + "tokenizer.ggml.tokens".length() + 8;
        ByteBuffer.wrap(hugeArray).order(ByteOrder.LITTLE_ENDIAN).putLong(at, 1L << 31);
        assertThatThrownBy(() -> GgufFile.open(write("array.gguf", hugeArray)))
                .hasMessageContaining("array length in metadata value of 'tokenizer.ggml.tokens'");
    }

    @Test
    void unknownArchitectureAndMissingKeysAreNamed() throws IOException {
        Path foo = tmp.resolve("foo.gguf");
        new GgufWriter().putString("general.architecture", "gptj").write(foo);
        assertThatThrownBy(() -> Model.load(foo)).hasMessageContaining("unsupported architecture 'gptj'");

        Path noDim = tmp.resolve("nodim.gguf");
        new GgufWriter().putString("general.architecture", "llama").putUInt32("llama.attention.head_count", 4).write(noDim);
        assertThatThrownBy(() -> Model.load(noDim)).hasMessageContaining("missing required key 'llama.embedding_length'");
    }

    @Test
    void writerRoundTripsMetadataAndTensors() throws IOException {
        Path p = tmp.resolve("w.gguf");
        new GgufWriter()
                .putString("s", "héllo")
                .putUInt32("u", 4_000_000_000L)
                .putFloat32("f", 1.5f)
                .putBool("b", true)
                .putStringArray("sa", java.util.List.of("a", "b c"))
                .putInt32Array("ia", new int[] {-1, 2})
                .addTensor("t", GgmlType.F32, new long[] {3, 2}, (row, out) -> Arrays.fill(out, row + 0.5f))
                .addTensor("q", GgmlType.Q8_0, new long[] {64}, (row, out) -> Arrays.fill(out, 0.25f))
                .write(p);
        GgufFile f = GgufFile.open(p);
        assertThat(f.getString("s")).isEqualTo("héllo");
        assertThat(f.metadata().get("u")).isEqualTo(4_000_000_000L);
        assertThat(f.getDouble("f")).isEqualTo(1.5);
        assertThat(f.getBoolean("b", false)).isTrue();
        assertThat(f.getStringArray("sa")).containsExactly("a", "b c");
        assertThat(f.getIntegerArray("ia")).containsExactly(-1, 2);
        GgufTensor t = f.tensor("t");
        assertThat(t.ne()).containsExactly(3, 2);
        assertThat(t.bytes().getFloat(3 * 4)).isEqualTo(1.5f);
        assertThat(f.tensor("q").data().capacity()).isEqualTo(2 * 34);
        assertThat(f.dataOffset() % 32).isZero();
    }

    private Path write(String name, byte[] bytes) throws IOException {
        Path p = tmp.resolve(name);
        Files.write(p, bytes);
        return p;
    }

    private static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (hay[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        throw new AssertionError("not found");
    }
}
