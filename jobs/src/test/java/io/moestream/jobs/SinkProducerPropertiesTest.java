package io.moestream.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Properties;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.junit.jupiter.api.Test;

class SinkProducerPropertiesTest {

    @Test
    void exactlyOnceSinksLingerAndKeepTheirTransactionsWithinTheBrokersCap() {
        Properties p = MoeStreamJob.sinkProducerProperties(DeliveryGuarantee.EXACTLY_ONCE);
        assertThat(p.getProperty("linger.ms")).isEqualTo(Integer.toString(MoeStreamJob.EXACTLY_ONCE_LINGER_MS));
        assertThat(Long.parseLong(p.getProperty("transaction.timeout.ms"))).isLessThanOrEqualTo(15 * 60_000L);
    }

    @Test
    void atLeastOnceSinksSendAtOnceBecauseAnAnswerIsVisibleWhenWritten() {
        Properties p = MoeStreamJob.sinkProducerProperties(DeliveryGuarantee.AT_LEAST_ONCE);
        assertThat(p.getProperty("linger.ms")).isNull();
    }
}
