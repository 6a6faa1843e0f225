package io.moestream.operators;

import static io.moestream.operators.TestRecords.askDocument;
import static io.moestream.operators.TestRecords.part;
import static io.moestream.operators.TestRecords.stateless;
import static io.moestream.operators.TestRecords.turn;
import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class ContextKeyTest {

    @Test
    void promptsAndDocumentsOfOneTenantAndContextShareAKey() throws Exception {
        String document = ContextKey.documentSelector().getKey(part("acme", "doc-1", 0, true, "x"));
        assertThat(ContextKey.promptSelector().getKey(askDocument("acme", "r1", "doc-1", "q", 1))).isEqualTo(document);
        assertThat(ContextKey.promptSelector().getKey(turn("acme", "r2", "doc-1", "q", 1))).isEqualTo(document);
        assertThat(ContextKey.tenant(document)).isEqualTo("acme");
        assertThat(ContextKey.id(document)).isEqualTo("doc-1");
    }

    @Test
    void theSameContextIdOfAnotherTenantIsAnotherKey() throws Exception {
        String ofA = ContextKey.documentSelector().getKey(part("tenant-a", "doc-1", 0, true, "x"));
        String ofB = ContextKey.promptSelector().getKey(askDocument("tenant-b", "r1", "doc-1", "q", 1));
        assertThat(ofB).isNotEqualTo(ofA);
        // ids that would collide under a printable separator stay apart
        assertThat(ContextKey.of("a/b", "c")).isNotEqualTo(ContextKey.of("a", "b/c"));
    }

    @Test
    void statelessPromptsAreKeyedByRequestId() throws Exception {
        assertThat(ContextKey.promptSelector().getKey(stateless("acme", "req-9", "q", 1)))
                .isEqualTo(ContextKey.of("acme", "req-9"));
    }
}
