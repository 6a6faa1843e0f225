package io.moestream.runtime.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import io.moestream.runtime.Fixtures;
import io.moestream.runtime.SharedOracle;
import io.moestream.runtime.gguf.GgufFile;
import io.moestream.runtime.gguf.GgufWriter;
import io.moestream.runtime.graph.TensorRole;
import io.moestream.runtime.moe.RoutingConfig;
import io.moestream.runtime.moe.RoutingConfig.Gating;

import java.io.IOException;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Per-architecture configuration from GGUF keys, its error messages, and the oracle README's
 * "mistakes" table: getting one routing detail wrong moves the logits far beyond the tolerance.
 */
class ArchitectureTest {

    @TempDir Path tmp;

    @Test
    void bailingmoe2IsReadWithGroupRoutingSharedExpertAndNextN() throws IOException {
        try (Model m = Model.load(Fixtures.model(Fixtures.TINY_GROUPMOE))) {
            ModelConfig c = m.config();
            assertThat(c.architecture()).isEqualTo("bailingmoe2");
            assertThat(c.layers()).isEqualTo(3);
            assertThat(c.nextnLayers()).isEqualTo(1);
            assertThat(c.leadingDenseLayers()).isEqualTo(1);
            assertThat(c.isMoeLayer(0)).isFalse();
            assertThat(c.isMoeLayer(1)).isTrue();
            assertThat(c.fusedQkv()).isTrue();
            assertThat(c.qkNorm()).isEqualTo(ModelConfig.QkNorm.PER_HEAD);
            assertThat(c.ropeType()).isEqualTo(ModelConfig.RopeType.NEOX);
            assertThat(c.ropeDims()).isEqualTo(16);
            assertThat(c.headDim()).isEqualTo(32);
            assertThat(c.sharedExpertDim()).isEqualTo(64);
            assertThat(c.sharedExpertGate()).isFalse();
            assertThat(c.routing()).isEqualTo(new RoutingConfig(Gating.SIGMOID, 16, 4, true, 2.5f, 4, 2));
            assertThat(m.newCache().layers()).isEqualTo(3);
        }
    }

    @Test
    void qwen2moeHasRawSoftmaxWeightsAndAGatedSharedExpert() throws IOException {
        try (Model m = Model.load(Fixtures.model(Fixtures.TINY_QWEN2MOE))) {
            ModelConfig c = m.config();
            assertThat(c.routing()).isEqualTo(RoutingConfig.softmaxTopK(16, 4, false));
            assertThat(c.sharedExpertDim()).isEqualTo(192);
            assertThat(c.sharedExpertGate()).isTrue();
            assertThat(c.ropeType()).isEqualTo(ModelConfig.RopeType.NEOX);
            assertThat(c.qkNorm()).isEqualTo(ModelConfig.QkNorm.NONE);
            assertThat(m.weights().vector(io.moestream.runtime.graph.TensorRole.ATTN_Q_BIAS, 0)).hasSize(128);
        }
    }

    @Test
    void groupRoutingIsReadForAnyArchitecture() throws IOException {
        Path p = tmp.resolve("llama-groups.gguf");
        llamaKeys(new GgufWriter()).putUInt32("llama.expert_count", 16).putUInt32("llama.expert_used_count", 4)
                .putUInt32("llama.expert_group_count", 4).putUInt32("llama.expert_group_used_count", 2).write(p);
        ModelConfig c = ModelConfig.from(GgufFile.open(p));
        assertThat(c.routing()).isEqualTo(new RoutingConfig(Gating.SOFTMAX, 16, 4, true, 1f, 4, 2));
        assertThat(c.expertDim()).isEqualTo(256);
    }

    @Test
    void unknownArchitectureAndMissingKeysAreNamed() throws IOException {
        Path gptj = tmp.resolve("gptj.gguf");
        new GgufWriter().putString("general.architecture", "gptj").write(gptj);
        assertThatThrownBy(() -> ModelConfig.from(GgufFile.open(gptj)))
                .hasMessageContaining("unsupported architecture 'gptj'").hasMessageContaining("bailingmoe2");

        Path ling = tmp.resolve("ling.gguf");
        new GgufWriter().putString("general.architecture", "bailingmoe2").putUInt32("bailingmoe2.embedding_length", 128)
                .putUInt32("bailingmoe2.block_count", 4).putUInt32("bailingmoe2.attention.head_count", 4)
                .putUInt32("bailingmoe2.expert_count", 16).putUInt32("bailingmoe2.expert_used_count", 4)
                .putUInt32("bailingmoe2.leading_dense_block_count", 1).putUInt32("bailingmoe2.expert_feed_forward_length", 64)
                .putUInt32("bailingmoe2.expert_shared_count", 1).putUInt32("bailingmoe2.vocab_size", 768).write(ling);
        assertThatThrownBy(() -> ModelConfig.from(GgufFile.open(ling)))
                .hasMessageContaining("missing required key 'bailingmoe2.expert_gating_func'");

        Path badGroups = tmp.resolve("bad-groups.gguf");
        llamaKeys(new GgufWriter()).putUInt32("llama.expert_count", 16).putUInt32("llama.expert_used_count", 4)
                .putUInt32("llama.expert_group_count", 3).putUInt32("llama.expert_group_used_count", 2).write(badGroups);
        assertThatThrownBy(() -> ModelConfig.from(GgufFile.open(badGroups)))
                .hasMessageContaining("bad-groups.gguf").hasMessageContaining("expert_group_count 3");

        Path noRouter = tmp.resolve("no-used.gguf");
        llamaKeys(new GgufWriter()).putUInt32("llama.expert_count", 16).write(noRouter);
        assertThatThrownBy(() -> ModelConfig.from(GgufFile.open(noRouter)))
                .hasMessageContaining("missing required key 'llama.expert_used_count'");
    }

    private static GgufWriter llamaKeys(GgufWriter w) {
        return w.putString("general.architecture", "llama").putUInt32("llama.embedding_length", 128)
                .putUInt32("llama.block_count", 2).putUInt32("llama.attention.head_count", 4)
                .putUInt32("llama.context_length", 64).putUInt32("llama.feed_forward_length", 256)
                .putUInt32("llama.vocab_size", 768).putFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
    }

    // --- the oracle README's mistakes table: each wrong detail moves the logits by far more than 2e-3

    private static double maxDiffAtLastPromptPosition(Model m, String stem) {
        return maxDiffAtLastPromptPosition(m, Fixtures.golden(stem));
    }

    private static double maxDiffAtLastPromptPosition(Model m, JsonNode golden) {
        double max = 0;
        for (JsonNode p : golden.get("prompts")) {
            if (p.get("token_ids").size() > 100) {
                continue; // the long prompt adds time, not information
            }
            float[] logits = new Engine(m).forward(m.newCache(), Fixtures.ints(p.get("token_ids")));
            JsonNode last = p.get("last_logits");
            for (int i = 0; i < logits.length; i++) {
                max = Math.max(max, Math.abs(logits[i] - last.get(i).asDouble()));
            }
        }
        return max;
    }

    private static ModelConfig withRouting(ModelConfig c, RoutingConfig r) {
        return with(c, r, c.scales());
    }

    private static ModelConfig with(ModelConfig c, RoutingConfig r, ModelConfig.Scales scales) {
        return with(c, r, scales, c.attention(), c.yarn());
    }

    private static ModelConfig with(ModelConfig c, RoutingConfig r, ModelConfig.Scales scales, ModelConfig.AttentionLayout attention,
            ModelConfig.Yarn yarn) {
        return new ModelConfig(c.architecture(), c.contextLength(), c.dim(), c.layers(), c.heads(), c.kvHeads(), c.headDim(),
                c.ffnDim(), c.expertDim(), c.vocabSize(), c.ropeBase(), c.ropeDims(), c.ropeType(), c.rmsEps(), c.qkNorm(),
                c.fusedQkv(), c.leadingDenseLayers(), c.nextnLayers(), c.sharedExpertDim(), c.sharedExpertGate(), r, scales,
                attention, yarn, c.mla());
    }

    @Test
    void deepseek2RunsLatentAttentionWithGroupRoutingAndSharedExperts() throws IOException {
        String stem = "tiny-deepseek2-f32";
        try (Model m = Model.load(SharedOracle.model(stem))) {
            ModelConfig c = m.config();
            assertThat(c.mla()).isEqualTo(new ModelConfig.Mla(64, 64, 32, 16, 32));
            assertThat(c.headDim()).isEqualTo(80);
            assertThat(c.kvHeads()).isEqualTo(1);
            assertThat(c.attentionScale()).isEqualTo(1f / (float) Math.sqrt(48));
            assertThat(c.ropeType()).isEqualTo(ModelConfig.RopeType.NORM);
            assertThat(c.leadingDenseLayers()).isEqualTo(1);
            assertThat(c.sharedExpertDim()).isEqualTo(32);
            assertThat(c.routing()).isEqualTo(new RoutingConfig(Gating.SIGMOID, 16, 4, true, 2.5f, 4, 2));
            assertThat(m.newCache().paged().shape().headDim()).isEqualTo(80);
            JsonNode golden = SharedOracle.golden(stem);
            assertThat(maxDiffAtLastPromptPosition(m, golden)).isLessThan(2e-3);
            RoutingConfig r = c.routing();
            for (RoutingConfig wrong : new RoutingConfig[] {
                    new RoutingConfig(r.gating(), 16, 4, r.normalize(), r.scale(), 0, 0),
                    new RoutingConfig(r.gating(), 16, 4, false, r.scale(), 4, 2),
                    new RoutingConfig(r.gating(), 16, 4, r.normalize(), 1f, 4, 2),
                    new RoutingConfig(Gating.SOFTMAX, 16, 4, r.normalize(), r.scale(), 4, 2)}) {
                assertThat(maxDiffAtLastPromptPosition(m.withConfig(withRouting(c, wrong)), golden)).as(wrong.toString())
                        .isGreaterThan(1.0);
            }
        }
        Path legacy = tmp.resolve("deepseek2-legacy.gguf");
        new GgufWriter().putString("general.architecture", "deepseek2").putUInt32("deepseek2.embedding_length", 128)
                .putUInt32("deepseek2.block_count", 2).putUInt32("deepseek2.attention.head_count", 4)
                .putUInt32("deepseek2.context_length", 64).putUInt32("deepseek2.feed_forward_length", 64)
                .putUInt32("deepseek2.expert_count", 8).putUInt32("deepseek2.expert_used_count", 2)
                .putUInt32("deepseek2.vocab_size", 768).putFloat32("deepseek2.attention.layer_norm_rms_epsilon", 1e-6f)
                .write(legacy);
        assertThatThrownBy(() -> ModelConfig.from(GgufFile.open(legacy))).hasMessageContaining("deepseek2-legacy.gguf")
                .hasMessageContaining("attn_kv_b");
    }

    /**
     * Sinks, sliding windows and MLA rows through the compressed KV path (F16 blocks of 16 positions,
     * read slab by slab): close to llama.cpp's F32-cache golden, as its own F16-cache run is (oracle
     * README: 0.02-0.06), and the same first greedy token.
     */
    @Test
    void theNewAttentionRunsOverCompressedKvBlocks() throws IOException {
        for (String stem : new String[] {"tiny-gpt-oss-f32", "tiny-deepseek2-f32"}) {
            try (Model m = Model.load(SharedOracle.model(stem))) {
                for (JsonNode p : SharedOracle.golden(stem).get("prompts")) {
                    int[] ids = Fixtures.ints(p.get("token_ids"));
                    if (ids.length < 40 || ids.length > 100) {
                        continue;
                    }
                    float[] logits = new Engine(m).forward(m.newCache(io.moestream.runtime.kv.KvCodec.F16, 16), ids);
                    JsonNode last = p.get("last_logits");
                    double max = 0;
                    for (int i = 0; i < logits.length; i++) {
                        max = Math.max(max, Math.abs(logits[i] - last.get(i).asDouble()));
                    }
                    assertThat(max).as("%s, %d-token prompt", stem, ids.length).isLessThan(0.25);
                    assertThat(io.moestream.runtime.sampler.Sampler.argmax(logits)).isEqualTo(p.get("greedy_ids").get(0).asInt());
                }
            }
        }
    }

    @Test
    void gptOssHasSinksAlternatingSlidingWindowsYarnAndSoftmaxOverTheChosen() throws IOException {
        String stem = "tiny-gpt-oss-f32";
        try (Model m = Model.load(SharedOracle.model(stem))) {
            ModelConfig c = m.config();
            assertThat(c.attention()).isEqualTo(new ModelConfig.AttentionLayout(16, 2, true, true));
            assertThat(c.isSlidingLayer(0)).isTrue();
            assertThat(c.isSlidingLayer(1)).isFalse();
            assertThat(c.yarn().freqScale()).isEqualTo(1f / 32);
            assertThat(c.yarn().origContext()).isEqualTo(4096);
            assertThat(c.routing()).isEqualTo(new RoutingConfig(Gating.SOFTMAX_WEIGHT, 8, 4, false, 1f, 0, 0));
            assertThat(c.expertDim()).isEqualTo(64);
            assertThat(m.weights().vector(TensorRole.ATTN_SINKS, 0)).hasSize(4);
            assertThat(m.weights().vector(TensorRole.FFN_DOWN_EXPS_BIAS, 1)).hasSize(256 * 8);
            assertThat(m.weights().vector(TensorRole.FFN_NORM, 0)).isNull();
            JsonNode golden = SharedOracle.golden(stem);
            assertThat(maxDiffAtLastPromptPosition(m, golden)).isLessThan(2e-3);
            ModelConfig.AttentionLayout a = c.attention();
            ModelConfig[] wrong = {
                with(c, c.routing(), c.scales(), new ModelConfig.AttentionLayout(a.window(), a.period(), false, true), c.yarn()),
                with(c, c.routing(), c.scales(), new ModelConfig.AttentionLayout(0, a.period(), true, true), c.yarn()),
                with(c, c.routing(), c.scales(), a, null),
                with(c, new RoutingConfig(Gating.SOFTMAX, 8, 4, false, 1f, 0, 0), c.scales(), a, c.yarn())};
            for (ModelConfig w : wrong) {
                assertThat(maxDiffAtLastPromptPosition(m.withConfig(w), golden)).as(w.toString()).isGreaterThan(1.0);
            }
        }
    }

    @Test
    void olmoeNormsTheWholeProjectionAndKeepsRawSoftmaxWeights() throws IOException {
        String stem = "tiny-olmoe-f32";
        try (Model m = Model.load(SharedOracle.model(stem))) {
            ModelConfig c = m.config();
            assertThat(c.qkNorm()).isEqualTo(ModelConfig.QkNorm.WHOLE);
            assertThat(m.weights().vector(TensorRole.ATTN_Q_NORM, 0)).hasSize(c.qDim());
            assertThat(m.weights().vector(TensorRole.ATTN_K_NORM, 1)).hasSize(c.kvDim());
            assertThat(c.ropeType()).isEqualTo(ModelConfig.RopeType.NEOX);
            assertThat(c.expertDim()).isEqualTo(32);
            assertThat(c.routing()).isEqualTo(RoutingConfig.softmaxTopK(16, 4, false));
            JsonNode golden = SharedOracle.golden(stem);
            assertThat(maxDiffAtLastPromptPosition(m, golden)).isLessThan(2e-3);
            Model renormalised = m.withConfig(withRouting(c, RoutingConfig.softmaxTopK(16, 4, true)));
            assertThat(maxDiffAtLastPromptPosition(renormalised, golden)).isGreaterThan(1.0);
        }
    }

    @Test
    void granitemoeAppliesItsFourScales() throws IOException {
        String stem = "tiny-granitemoe-f32";
        try (Model m = Model.load(SharedOracle.model(stem))) {
            ModelConfig c = m.config();
            assertThat(c.scales()).isEqualTo(new ModelConfig.Scales(2f, 0.5f, 0.03125f, 2f));
            assertThat(c.attentionScale()).isEqualTo(0.03125f);
            assertThat(c.ropeType()).isEqualTo(ModelConfig.RopeType.NORM);
            assertThat(c.routing()).isEqualTo(RoutingConfig.softmaxTopK(8, 2, true));
            assertThat(c.expertDim()).isEqualTo(64);
            JsonNode golden = SharedOracle.golden(stem);
            assertThat(maxDiffAtLastPromptPosition(m, golden)).isLessThan(2e-3);
            ModelConfig.Scales s = c.scales();
            for (ModelConfig.Scales wrong : new ModelConfig.Scales[] {
                    new ModelConfig.Scales(1f, s.residual(), s.attention(), s.logit()),
                    new ModelConfig.Scales(s.embedding(), 1f, s.attention(), s.logit()),
                    new ModelConfig.Scales(s.embedding(), s.residual(), 0f, s.logit()),
                    new ModelConfig.Scales(s.embedding(), s.residual(), s.attention(), 1f)}) {
                assertThat(maxDiffAtLastPromptPosition(m.withConfig(with(c, c.routing(), wrong)), golden)).as(wrong.toString())
                        .isGreaterThan(1.0);
            }
        }
        Path noLogitScale = tmp.resolve("granite.gguf");
        new GgufWriter().putString("general.architecture", "granitemoe").putUInt32("granitemoe.embedding_length", 128)
                .putUInt32("granitemoe.block_count", 2).putUInt32("granitemoe.attention.head_count", 4)
                .putUInt32("granitemoe.context_length", 64).putUInt32("granitemoe.feed_forward_length", 64)
                .putUInt32("granitemoe.expert_count", 8).putUInt32("granitemoe.expert_used_count", 2)
                .putUInt32("granitemoe.vocab_size", 768).putFloat32("granitemoe.attention.layer_norm_rms_epsilon", 1e-6f)
                .write(noLogitScale);
        assertThatThrownBy(() -> ModelConfig.from(GgufFile.open(noLogitScale)))
                .hasMessageContaining("missing required key 'granitemoe.logit_scale'");
    }

    @Test
    void everyGroupRoutingDetailMatters() throws IOException {
        try (Model m = Model.load(Fixtures.model(Fixtures.TINY_GROUPMOE))) {
            RoutingConfig r = m.config().routing();
            assertThat(maxDiffAtLastPromptPosition(m, Fixtures.TINY_GROUPMOE)).isLessThan(2e-3);
            RoutingConfig noGroups = new RoutingConfig(r.gating(), r.experts(), r.topK(), r.normalize(), r.scale(), 0, 0);
            RoutingConfig noNorm = new RoutingConfig(r.gating(), r.experts(), r.topK(), false, r.scale(), r.groups(), r.groupsUsed());
            RoutingConfig noScale = new RoutingConfig(r.gating(), r.experts(), r.topK(), r.normalize(), 1f, r.groups(), r.groupsUsed());
            RoutingConfig softmax = new RoutingConfig(Gating.SOFTMAX, r.experts(), r.topK(), r.normalize(), r.scale(), r.groups(), r.groupsUsed());
            for (RoutingConfig wrong : new RoutingConfig[] {noGroups, noNorm, noScale, softmax}) {
                assertThat(maxDiffAtLastPromptPosition(m.withConfig(withRouting(m.config(), wrong)), Fixtures.TINY_GROUPMOE))
                        .as(wrong.toString()).isGreaterThan(1.0);
            }
        }
    }

    @Test
    void qwen2moeWeightsMustNotBeRenormalised() throws IOException {
        try (Model m = Model.load(Fixtures.model(Fixtures.TINY_QWEN2MOE))) {
            Model wrong = m.withConfig(withRouting(m.config(), RoutingConfig.softmaxTopK(16, 4, true)));
            assertThat(maxDiffAtLastPromptPosition(wrong, Fixtures.TINY_QWEN2MOE)).isGreaterThan(1.0);
        }
    }
}
