package io.moestream.jobs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moestream.operators.InferenceConfig;
import io.moestream.operators.KvStateConfig;
import java.time.Duration;
import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.StateBackendOptions;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.sink.TransactionNamingStrategy;
import org.junit.jupiter.api.Test;

class JobOptionsTest {

    @Test
    void rocksDbWithIncrementalCheckpointsIsTheDefault() {
        Configuration c = JobOptions.withStateDefaults(new Configuration());
        assertThat(c.get(StateBackendOptions.STATE_BACKEND)).isEqualTo("rocksdb");
        assertThat(c.get(CheckpointingOptions.INCREMENTAL_CHECKPOINTS)).isTrue();
    }

    @Test
    void theBackendIsOverridable() {
        Configuration heap = new Configuration();
        heap.set(JobOptions.STATE_BACKEND, "heap");
        assertThat(JobOptions.withStateDefaults(heap).get(StateBackendOptions.STATE_BACKEND)).isEqualTo("hashmap");

        Configuration plain = new Configuration();
        plain.set(StateBackendOptions.STATE_BACKEND, "hashmap");
        plain.set(CheckpointingOptions.INCREMENTAL_CHECKPOINTS, false);
        Configuration c = JobOptions.withStateDefaults(plain);
        assertThat(c.get(StateBackendOptions.STATE_BACKEND)).isEqualTo("hashmap");
        assertThat(c.get(CheckpointingOptions.INCREMENTAL_CHECKPOINTS)).isFalse();

        Configuration bad = new Configuration();
        bad.set(JobOptions.STATE_BACKEND, "leveldb");
        assertThatThrownBy(() -> JobOptions.withStateDefaults(bad)).hasMessageContaining("rocksdb or heap");
    }

    @Test
    void kvStateOptionsMapOntoTheOperatorsConfig() {
        assertThat(JobOptions.kvState(new Configuration())).isEqualTo(KvStateConfig.defaults());
        Configuration c = new Configuration();
        c.set(JobOptions.KV_CODEC, "int4/16");
        c.set(JobOptions.KV_BLOCK_TOKENS, 64);
        c.set(JobOptions.KV_HEAD_PRUNING, true);
        c.set(JobOptions.STATE_TTL, Duration.ofHours(1));
        c.set(JobOptions.TENANT_MAX_CONTEXTS, 5);
        KvStateConfig kv = JobOptions.kvState(c);
        assertThat(kv.kvCodec().toString()).isEqualTo("int4/16");
        assertThat(kv.blockTokens()).isEqualTo(64);
        assertThat(kv.headPruning()).isTrue();
        assertThat(kv.ttlMillis()).isEqualTo(3_600_000L);
        assertThat(kv.tenantMaxContexts()).isEqualTo(5);
    }

    @Test
    void sinksAreExactlyOnceUnlessAtLeastOnceIsAskedFor() {
        assertThat(JobOptions.delivery(new Configuration())).isEqualTo(DeliveryGuarantee.EXACTLY_ONCE);
        Configuration c = new Configuration();
        c.set(JobOptions.DELIVERY, "at-least-once");
        assertThat(JobOptions.delivery(c)).isEqualTo(DeliveryGuarantee.AT_LEAST_ONCE);
        c.set(JobOptions.DELIVERY, "none");
        assertThatThrownBy(() -> JobOptions.delivery(c)).hasMessageContaining("exactly-once or at-least-once, got 'none'");
    }

    @Test
    void exactlyOnceSinksReuseTransactionalIdsUnlessIncrementingIsAskedFor() {
        assertThat(JobOptions.transactionNaming(new Configuration())).isEqualTo(TransactionNamingStrategy.POOLING);
        Configuration c = new Configuration();
        c.set(JobOptions.TRANSACTION_NAMING, "Incrementing");
        assertThat(JobOptions.transactionNaming(c)).isEqualTo(TransactionNamingStrategy.INCREMENTING);
        c.set(JobOptions.TRANSACTION_NAMING, "random");
        assertThatThrownBy(() -> JobOptions.transactionNaming(c)).hasMessageContaining("pooling or incrementing, got 'random'");
    }

    @Test
    void stepsRunWhereAutoSaysByDefault() {
        assertThat(new Configuration().get(JobOptions.BACKEND)).isEqualTo("auto").isEqualTo(InferenceConfig.DEFAULT_BACKEND);
    }
}
