package io.moestream.runtime.graph;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moestream.runtime.Fixtures;
import io.moestream.runtime.gguf.GgufFile;
import io.moestream.runtime.gguf.GgufFormatException;
import io.moestream.runtime.model.ModelConfig;

import java.io.IOException;
import java.util.HashSet;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The one binding of GGUF tensor names to roles, on the oracle models of every architecture. */
class TensorRoleTest {

    /** Every tensor of the file is bound to a role exactly once, except those of NextN blocks (not run). */
    @ParameterizedTest
    @ValueSource(strings = {Fixtures.TINY_LLAMA, Fixtures.TINY_MIXTRAL, Fixtures.TINY_QWEN3MOE, Fixtures.TINY_QWEN2MOE,
        Fixtures.TINY_GROUPMOE})
    void everyTensorOfTheRunningLayersHasItsRole(String stem) throws IOException {
        GgufFile f = GgufFile.open(Fixtures.model(stem));
        ModelConfig c = ModelConfig.from(f);
        Set<String> bound = new HashSet<>();
        TensorRole.bindAll(f, c, (role, layer, t) -> assertThat(bound.add(t.name())).as(t.name()).isTrue());
        Set<String> expected = new HashSet<>();
        for (String name : f.tensors().keySet()) {
            boolean nextn = false;
            for (int l = c.layers(); l < c.layers() + c.nextnLayers(); l++) {
                nextn |= name.startsWith("blk." + l + ".");
            }
            if (!nextn) {
                expected.add(name);
            }
        }
        assertThat(bound).isEqualTo(expected);
    }

    @Test
    void aTensorWhoseShapeDisagreesWithTheMetadataIsNamed() throws IOException {
        GgufFile f = GgufFile.open(Fixtures.model(Fixtures.TINY_QWEN2MOE));
        ModelConfig c = ModelConfig.from(f);
        ModelConfig wider = new ModelConfig(c.architecture(), c.contextLength(), c.dim(), c.layers(), c.heads(), c.kvHeads(),
                c.headDim(), c.ffnDim(), c.expertDim(), c.vocabSize(), c.ropeBase(), c.ropeDims(), c.ropeType(), c.rmsEps(), c.qkNorm(),
                c.fusedQkv(), c.leadingDenseLayers(), c.nextnLayers(), c.sharedExpertDim() + 1, c.sharedExpertGate(), c.routing(),
                c.scales(), c.attention(), c.yarn(), c.mla());
        assertThatThrownBy(() -> TensorRole.FFN_GATE_SHEXP.bind(f, wider, 1))
                .isInstanceOf(GgufFormatException.class)
                .hasMessageContaining("blk.1.ffn_gate_shexp.weight")
                .hasMessageContaining("expected [" + c.dim() + ", " + (c.sharedExpertDim() + 1) + "]");
    }

    @Test
    void presenceFollowsTheConfiguration() throws IOException {
        ModelConfig bailing = ModelConfig.from(GgufFile.open(Fixtures.model(Fixtures.TINY_GROUPMOE)));
        assertThat(bailing.leadingDenseLayers()).isPositive();
        assertThat(TensorRole.ATTN_QKV.presence(bailing, 0)).isEqualTo(TensorRole.Presence.REQUIRED);
        assertThat(TensorRole.ATTN_Q.presence(bailing, 0)).isEqualTo(TensorRole.Presence.ABSENT);
        assertThat(TensorRole.FFN_GATE.presence(bailing, 0)).as("leading dense layer").isEqualTo(TensorRole.Presence.REQUIRED);
        int moeLayer = bailing.leadingDenseLayers();
        assertThat(TensorRole.FFN_GATE.presence(bailing, moeLayer)).isEqualTo(TensorRole.Presence.ABSENT);
        assertThat(TensorRole.FFN_GATE_EXPS.presence(bailing, moeLayer)).isEqualTo(TensorRole.Presence.REQUIRED);
        assertThat(TensorRole.EXP_PROBS_B.presence(bailing, moeLayer)).isEqualTo(TensorRole.Presence.OPTIONAL);
        assertThat(TensorRole.FFN_GATE_INP_SHEXP.presence(bailing, moeLayer)).as("ungated shared expert")
                .isEqualTo(TensorRole.Presence.ABSENT);
        assertThat(TensorRole.OUTPUT.ggufName(3)).isEqualTo("output.weight");
        assertThat(TensorRole.ATTN_Q_BIAS.ggufName(3)).isEqualTo("blk.3.attn_q.bias");
    }
}
