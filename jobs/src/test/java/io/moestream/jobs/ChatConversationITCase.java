package io.moestream.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import io.moestream.jobs.kafka.LocalKafka;
import io.moestream.runtime.gguf.GgmlType;
import io.moestream.runtime.synthetic.SyntheticModels;
import io.moestream.runtime.synthetic.SyntheticSpec;
import io.moestream.schemas.ChatMessage;
import io.moestream.schemas.ErrorCode;
import io.moestream.schemas.Generation;
import io.moestream.schemas.InferenceError;
import io.moestream.schemas.Prompt;
import io.moestream.schemas.PromptMode;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.execution.JobClient;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An instruct-style conversation end to end (KRaft broker, MiniCluster, Avro): a GGUF with a ChatML
 * template and {@code <|im_start|>}/{@code <|im_end|>} control tokens, prompts given as chat
 * messages. Each CONVERSATION turn reuses the cached rendering of the turns before it and answers
 * exactly as the whole conversation rendered from scratch (a STATELESS prompt with the same messages),
 * also when the client rewrites an earlier message.
 */
class ChatConversationITCase {

    private static final int BLOCK_TOKENS = 32;

    @TempDir
    static Path dir;
    private static LocalKafka kafka;
    private static Path model;

    @BeforeAll
    static void start() throws Exception {
        kafka = LocalKafka.start(0);
        model = dir.resolve("chat-tiny.gguf");
        SyntheticModels.writeChat(SyntheticSpec.tiny(11), GgmlType.F32, model);
    }

    @AfterAll
    static void stop() throws Exception {
        if (kafka != null) {
            kafka.close();
        }
    }

    @Test
    void eachTurnReusesTheCachedConversationAndAnswersAsTheWholeConversationFromScratch() throws Exception {
        KafkaTestClient topics = KafkaTestClient.fresh(kafka, "chat", 1);
        Configuration conf = topics.jobOptions();
        conf.set(JobOptions.MODEL_PATH, model.toString());
        conf.set(JobOptions.KV_BLOCK_TOKENS, BLOCK_TOKENS);
        JobClient job = LocalRunner.start(conf, null, "moestream-chat-itcase");
        try {
            List<ChatMessage> turn1 = List.of(message("system", "You are a terse assistant. Answer every question in one short sentence."), message("user", "Name a colour."));
            topics.send(chat("turn-1", PromptMode.CONVERSATION, turn1),
                    Prompt.newBuilder(chat("both", PromptMode.STATELESS, turn1)).setText("Hello").build(),
                    chat("narrator", PromptMode.STATELESS, List.of(message("narrator", "Once upon a time"))));
            Generation g1 = topics.readCommitted(o -> o.answered("turn-1") && o.errors.size() == 2,
                    Duration.ofSeconds(180), Duration.ZERO).answer("turn-1");
            assertThat(g1.getUsage().getCachedTokens()).isZero();

            List<ChatMessage> turn2 = new ArrayList<>(turn1);
            turn2.add(message("assistant", g1.getText()));
            turn2.add(message("user", "And another?"));
            topics.send(chat("turn-2", PromptMode.CONVERSATION, turn2), chat("scratch-2", PromptMode.STATELESS, turn2));
            KafkaTestClient.Output out2 = topics.readCommitted(o -> o.answered("turn-2", "scratch-2"),
                    Duration.ofSeconds(120), Duration.ZERO);
            Generation g2 = out2.answer("turn-2");
            Generation scratch2 = out2.answer("scratch-2");
            int whole2 = scratch2.getUsage().getPromptTokens();
            assertThat(g2.getUsage().getCachedTokens()).as("turn 2 reuses turn 1's cache").isPositive();
            assertThat(g2.getUsage().getPromptTokens()).as("turn 2 prefills less than the whole conversation")
                    .isLessThan(whole2);
            assertThat(g2.getUsage().getCachedTokens() + g2.getUsage().getPromptTokens()).isEqualTo(whole2);
            assertThat(g2.getTokenIds()).isEqualTo(scratch2.getTokenIds());
            assertThat(g2.getText()).isEqualTo(scratch2.getText());
            assertThat(g2.getReasoning()).as("ChatML has no think markers").isNull();

            // the client rewrites the first answer: the cache is cut back to a block boundary within the common prefix
            List<ChatMessage> turn3 = new ArrayList<>(turn1);
            turn3.add(message("assistant", "Red."));
            turn3.add(message("user", "Why?"));
            topics.send(chat("turn-3", PromptMode.CONVERSATION, turn3), chat("scratch-3", PromptMode.STATELESS, turn3));
            KafkaTestClient.Output out3 = topics.readCommitted(o -> o.answered("turn-3", "scratch-3"),
                    Duration.ofSeconds(120), Duration.ZERO);
            Generation g3 = out3.answer("turn-3");
            Generation scratch3 = out3.answer("scratch-3");
            int cached3 = g3.getUsage().getCachedTokens();
            assertThat(cached3).as("the common prefix (system and first user turn), whole blocks").isPositive();
            assertThat(cached3 % BLOCK_TOKENS).isZero();
            assertThat(cached3).isLessThan(KafkaTestClient.cacheAfter(g2));
            assertThat(cached3 + g3.getUsage().getPromptTokens()).isEqualTo(scratch3.getUsage().getPromptTokens());
            assertThat(g3.getTokenIds()).isEqualTo(scratch3.getTokenIds());
            assertThat(g3.getText()).isEqualTo(scratch3.getText());

            List<InferenceError> errors = out3.errors;
            assertThat(errors).extracting(InferenceError::getRequestId).containsExactlyInAnyOrder("both", "narrator");
            assertThat(errors).allSatisfy(e -> assertThat(e.getCode()).isEqualTo(ErrorCode.INVALID_PARAMS));
            assertThat(errors).anySatisfy(e -> assertThat(e.getMessage()).contains("not both"));
            assertThat(errors).anySatisfy(e -> assertThat(e.getMessage()).contains("messages[0].role is 'narrator'"));
        } finally {
            job.cancel().get();
        }
    }

    private static ChatMessage message(String role, String content) {
        return ChatMessage.newBuilder().setRole(role).setContent(content).build();
    }

    private static Prompt chat(String requestId, PromptMode mode, List<ChatMessage> messages) {
        return Prompt.newBuilder().setRequestId(requestId).setTenant("acme")
                .setContextId(mode == PromptMode.STATELESS ? null : "chat-1").setMode(mode)
                .setMessages(messages).setMaxTokens(8).setTemperature(0f).build();
    }
}
