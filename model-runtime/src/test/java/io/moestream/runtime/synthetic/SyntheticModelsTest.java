package io.moestream.runtime.synthetic;

import static org.assertj.core.api.Assertions.assertThat;

import io.moestream.runtime.gguf.GgmlType;
import io.moestream.runtime.gguf.GgufFile;
import io.moestream.runtime.model.Engine;
import io.moestream.runtime.model.GenerationRequest;
import io.moestream.runtime.model.GenerationResult;
import io.moestream.runtime.model.Model;
import io.moestream.runtime.sampler.Sampler;
import io.moestream.runtime.sampler.SamplingParams;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SyntheticModelsTest {

    @TempDir Path tmp;

    @Test
    void tinyPresetWritesLoadsAndRuns() throws IOException {
        Path f32 = tmp.resolve("tiny-f32.gguf");
        SyntheticModels.write(SyntheticSpec.tiny(1), GgmlType.F32, f32);
        try (Model model = Model.load(f32)) {
            assertThat(model.name()).isEqualTo("synthetic-tiny");
            assertThat(model.config().experts()).isEqualTo(8);
            assertThat(model.config().dim()).isEqualTo(128);
            assertThat(model.tokenizer().encodePrompt("Hello")).startsWith(766);
            GenerationResult r = new Engine(model).generate(List.of(new GenerationRequest(model.newCache(),
                    model.tokenizer().encodePrompt("Hello world"), SamplingParams.greedy(8), false))).get(0);
            assertThat(r.tokenIds()).isNotEmpty();
        }
        assertThat(GgufFile.open(f32).tensors()).hasSize(23);
    }

    @Test
    void sameSeedSameBytesOtherSeedOtherBytes() throws IOException {
        Path a = tmp.resolve("a.gguf");
        Path b = tmp.resolve("b.gguf");
        Path c = tmp.resolve("c.gguf");
        SyntheticModels.write(SyntheticSpec.tiny(5), GgmlType.Q8_0, a);
        SyntheticModels.write(SyntheticSpec.tiny(5), GgmlType.Q8_0, b);
        SyntheticModels.write(SyntheticSpec.tiny(6), GgmlType.Q8_0, c);
        assertThat(Files.readAllBytes(a)).isEqualTo(Files.readAllBytes(b));
        assertThat(Files.readAllBytes(a)).isNotEqualTo(Files.readAllBytes(c));
    }

    @Test
    void quantizedCopiesStayCloseToF32() throws IOException {
        Path f32 = tmp.resolve("f32.gguf");
        SyntheticModels.write(SyntheticSpec.tiny(3), GgmlType.F32, f32);
        int[] prompt = {766, 84, 444, 32, 438};
        float[] reference = new Engine(Model.load(f32)).forward(Model.load(f32).newCache(), prompt);
        for (GgmlType type : new GgmlType[] {GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0}) {
            Path p = tmp.resolve(type + ".gguf");
            SyntheticModels.write(SyntheticSpec.tiny(3), type, p);
            Model m = Model.load(p);
            assertThat(m.gguf().tensor("blk.0.attn_q.weight").type()).isEqualTo(type);
            assertThat(m.gguf().tensor("blk.0.ffn_gate_inp.weight").type()).isEqualTo(GgmlType.F32);
            float[] logits = new Engine(m).forward(m.newCache(), prompt);
            double corr = correlation(reference, logits);
            assertThat(corr).as(type.toString()).isGreaterThan(type == GgmlType.Q4_0 ? 0.9 : 0.99);
            if (type == GgmlType.F16) {
                assertThat(Sampler.argmax(logits)).isEqualTo(Sampler.argmax(reference));
            }
        }
        assertThat(Files.size(tmp.resolve("Q8_0.gguf"))).isLessThan(Files.size(f32) / 3);
    }

    @Test
    void presetsHaveTheDocumentedSizes() {
        assertThat(SyntheticSpec.bench(1).parameters()).isBetween(892_000_000L, 893_000_000L);
        assertThat(SyntheticSpec.small(1).parameters() * 4).isBetween(20_000_000L, 90_000_000L);
    }

    private static double correlation(float[] a, float[] b) {
        double ma = 0, mb = 0;
        for (int i = 0; i < a.length; i++) {
            ma += a[i];
            mb += b[i];
        }
        ma /= a.length;
        mb /= b.length;
        double sab = 0, saa = 0, sbb = 0;
        for (int i = 0; i < a.length; i++) {
            sab += (a[i] - ma) * (b[i] - mb);
            saa += (a[i] - ma) * (a[i] - ma);
            sbb += (b[i] - mb) * (b[i] - mb);
        }
        return sab / Math.sqrt(saa * sbb);
    }
}
