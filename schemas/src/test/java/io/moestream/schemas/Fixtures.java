package io.moestream.schemas;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.List;

/** One filled-in record of each type, with every optional field set. */
final class Fixtures {

    private Fixtures() {}

    static Document document() {
        return Document.newBuilder().setTenant("acme").setDocumentId("doc-1").setPart(2).setLast(false)
                .setText("Chapter two. Ünïcödé ✓").build();
    }

    static Prompt prompt() {
        return Prompt.newBuilder().setRequestId("req-1").setTenant("acme").setContextId("doc-1")
                .setMode(PromptMode.DOCUMENT).setText("Summarize.").setMaxTokens(10).setTemperature(0.7f)
                .setTopK(40).setTopP(0.9f).setSeed(42L).setStop(List.of("\n\n", "END")).build();
    }

    static Generation generation() {
        return Generation.newBuilder().setRequestId("req-1").setTenant("acme").setContextId("doc-1")
                .setText("A summary.").setTokenIds(List.of(1, 2, 3)).setFinishReason(FinishReason.STOP_SEQUENCE)
                .setUsage(new Usage(5, 100, 3)).setTimings(new Timings(1L, 20L, 30L)).setModel("tiny-moe").build();
    }

    static InferenceError error() {
        return InferenceError.newBuilder().setRequestId(null).setTenant("acme").setCode(ErrorCode.MALFORMED_RECORD)
                .setMessage("not Avro").setSourceTopic("moe.prompts").setSourcePartition(3).setSourceOffset(17L)
                .setRaw(ByteBuffer.wrap("{\"x\":1}".getBytes(StandardCharsets.UTF_8))).setTimestampMs(1_700_000_000_000L)
                .build();
    }

    static ContextReady contextReady() {
        return ContextReady.newBuilder().setTenant("acme").setContextId("doc-1").setTokens(1234).setKvBytes(56789L)
                .setCompressionRatio(3.5f).setPrefillMs(250L).setModel("tiny-moe").build();
    }

    static List<Object> all() {
        return List.of(document(), prompt(), generation(), error(), contextReady());
    }
}
