package io.moestream.runtime.bench;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moestream.runtime.Fixtures;
import io.moestream.runtime.kv.KvCodec;
import io.moestream.runtime.model.Model;

import java.io.IOException;

import org.junit.jupiter.api.Test;

class InferenceBenchmarkTest {

    @Test
    void reportsThroughputAndTheBandwidthCeilingAsJson() throws IOException {
        Model model = Model.load(Fixtures.model("tiny-mixtral-q8_0"));
        InferenceBenchmark.Result r = InferenceBenchmark.run(model, new InferenceBenchmark.Options(2, 3, 5, 4, 7, 8 << 20));
        JsonNode json = new ObjectMapper().readTree(r.toJson());
        assertThat(json.get("batch").asInt()).isEqualTo(3);
        assertThat(json.get("prefill_tokens_per_s").asDouble()).isPositive();
        assertThat(json.get("decode_tokens_per_s").asDouble()).isPositive();
        assertThat(json.get("memory_read_gb_per_s").asDouble()).isPositive();
        assertThat(json.get("kernels").asText()).isNotEmpty();
        assertThat(json.get("kv_codec").asText()).isEqualTo("f32");
        assertThat(json.get("decode_batched").asBoolean()).isTrue();
        // the warm-up's length, and whether the JIT had stopped compiling when timing began
        assertThat(json.get("warm_up_seconds").asDouble()).isPositive();
        assertThat(json.get("jit_quiet").isBoolean()).isTrue();
        // tiny-mixtral q8_0: everything but the embedding table and 6 of 8 experts per layer
        assertThat(r.bytesPerToken()).isBetween(400_000L, 700_000L);

        InferenceBenchmark.Result noBandwidth = InferenceBenchmark.run(model, new InferenceBenchmark.Options(1, 1, 2, 2, 7, 0));
        JsonNode single = new ObjectMapper().readTree(noBandwidth.toJson());
        assertThat(single.get("memory_read_gb_per_s").isNull()).isTrue();

        // compressed KV blocks, as the operator keeps them: 40-token prompts seal a block
        InferenceBenchmark.Result int8 = InferenceBenchmark.run(model,
                new InferenceBenchmark.Options(2, 2, 40, 3, 7, 0, KvCodec.parse("int8/8")));
        JsonNode compressed = new ObjectMapper().readTree(int8.toJson());
        assertThat(compressed.get("kv_codec").asText()).isEqualTo("int8/8");
        assertThat(compressed.get("decode_tokens_per_s").asDouble()).isPositive();
    }
}
