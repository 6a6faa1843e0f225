package io.moestream.operators;

import static io.moestream.operators.TestRecords.part;
import static io.moestream.operators.TestRecords.stateless;
import static io.moestream.operators.TestRecords.turn;
import static org.assertj.core.api.Assertions.assertThat;

import io.moestream.runtime.model.GenerationResult;
import io.moestream.runtime.model.KvCache;
import io.moestream.runtime.sampler.SamplingParams;
import io.moestream.schemas.AvroCodec;
import io.moestream.schemas.Document;
import io.moestream.schemas.Generation;
import io.moestream.schemas.Prompt;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.runtime.testutils.MiniClusterResourceConfiguration;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.apache.flink.util.CloseableIterator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The operator wired as the job wires it ({@link AvroDecodeFunction} then {@link InferenceOperator#apply}),
 * run on a MiniCluster with parallelism 2: checks that types, serializers and the operator survive a
 * real job graph and its mailbox (a small {@code maxQueued} makes input yield to steps), that bounded
 * input drains the queue, and that bad records in the same run get one error each while the valid
 * ones are answered unaffected.
 */
class InferencePipelineTest {

    @RegisterExtension
    static final MiniClusterExtension FLINK = new MiniClusterExtension(new MiniClusterResourceConfiguration.Builder()
            .setNumberTaskManagers(1)
            .setNumberSlotsPerTaskManager(2)
            .build());

    @Test
    void decodesAnswersAcrossSubtasksAndRejectsBadInput() throws Exception {
        Reference ref = Reference.get();
        AvroCodec<Prompt> prompts = AvroCodec.forPrompt();
        AvroCodec<Document> documents = AvroCodec.forDocument();
        List<RawRecord> promptRecords = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            promptRecords.add(new RawRecord("prompts", 0, i, prompts.encode(stateless("t" + (i % 2), "s" + i, "Hello number " + i, 4))));
        }
        promptRecords.add(new RawRecord("prompts", 0, 5, prompts.encode(turn("t0", "c1", "chat", "Hi there", 4))));
        promptRecords.add(new RawRecord("prompts", 0, 6, prompts.encode(turn("t0", "c2", "chat", " And then?", 4))));
        promptRecords.add(new RawRecord("prompts", 0, 7, "not avro".getBytes(StandardCharsets.UTF_8)));
        promptRecords.add(new RawRecord("prompts", 0, 8, AvroCodec.forDocument().encode(part("t0", "x", 0, true, "a document"))));
        promptRecords.add(new RawRecord("prompts", 0, 9, prompts.encode(stateless("t0", "s0", "a duplicate of s0", 4))));
        promptRecords.add(new RawRecord("prompts", 0, 10, prompts.encode(stateless("t1", "bad", "Hello", 0))));
        List<RawRecord> documentRecords = List.of(
                new RawRecord("documents", 0, 0, documents.encode(part("t0", "doc", 0, false, "Apache License, "))),
                new RawRecord("documents", 0, 1, documents.encode(part("t0", "doc", 1, true, "Version 2.0"))));

        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.setParallelism(2);
        TypeInformation<RawRecord> raw = TypeInformation.of(RawRecord.class);
        // one decoder per input keeps the turns of the conversation in order up to the keyBy
        SingleOutputStreamOperator<Document> docs = env.fromData(documentRecords, raw).process(AvroDecodeFunction.documents())
                .setParallelism(1);
        SingleOutputStreamOperator<Prompt> asks = env.fromData(promptRecords, raw).process(AvroDecodeFunction.prompts(64))
                .setParallelism(1);
        InferenceConfig config = Reference.config().withMaxSequences(3).withMaxQueued(4);
        SingleOutputStreamOperator<Generation> generations = InferenceOperator.apply(docs, asks, config);

        DataStream<String> all = generations.map(g -> "gen " + g.getRequestId() + " " + g.getTokenIds()
                        + " cached=" + g.getUsage().getCachedTokens()).returns(Types.STRING)
                .union(generations.getSideOutput(OutputTags.CONTEXTS).map(c -> "ctx " + c.getContextId() + " " + c.getTokens())
                                .returns(Types.STRING),
                        asks.getSideOutput(OutputTags.ERRORS).map(e -> "err " + e.getCode() + " " + e.getSourceOffset())
                                .returns(Types.STRING),
                        generations.getSideOutput(OutputTags.ERRORS).map(e -> "err " + e.getCode() + " " + e.getRequestId())
                                .returns(Types.STRING));
        List<String> lines = new ArrayList<>();
        try (CloseableIterator<String> it = all.executeAndCollect("inference-pipeline-test")) {
            it.forEachRemaining(lines::add);
        }

        List<String> expected = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            expected.add("gen s" + i + " " + Reference.ids(ref.stateless("Hello number " + i, 4)) + " cached=0");
        }
        KvCache chat = ref.newCache();
        GenerationResult c1 = ref.run(chat, ref.tokenizer.encodePrompt("Hi there"), SamplingParams.greedy(4), true);
        int afterTurn1 = chat.length();
        GenerationResult c2 = ref.run(chat, ref.tokenizer.encode(" And then?", false), SamplingParams.greedy(4), true);
        expected.add("gen c1 " + Reference.ids(c1) + " cached=0");
        expected.add("gen c2 " + Reference.ids(c2) + " cached=" + afterTurn1);
        expected.add("ctx doc " + ref.document("Apache License, ", "Version 2.0").length());
        expected.add("err MALFORMED_RECORD 7");
        expected.add("err MALFORMED_RECORD 8");
        expected.add("err DUPLICATE_REQUEST s0");
        expected.add("err INVALID_PARAMS 10");
        assertThat(lines).containsExactlyInAnyOrderElementsOf(expected);
    }
}
