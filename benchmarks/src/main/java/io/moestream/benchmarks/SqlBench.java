package io.moestream.benchmarks;

import io.moestream.jobs.JobOptions;
import io.moestream.jobs.LocalRunner;
import io.moestream.jobs.kafka.LocalKafka;
import io.moestream.jobs.kafka.Topics;
import io.moestream.jobs.sql.SqlScript;
import io.moestream.schemas.AvroCodec;
import io.moestream.schemas.Generation;
import io.moestream.schemas.Prompt;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Future;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.execution.JobClient;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * SQL {@code ML_PREDICT} with the moestream provider at several {@code max-concurrent-operations}
 * against the DataStream job, on the same stateless greedy prompts already on {@code moe.prompts}:
 * each run's clock goes from submitting the job to the last answer read back (job start included in
 * both). A warm-up SQL run loads the model and compiles the code first. Prints one line per run.
 * Usage: {@code SqlBench [prompts=64] [maxTokens=16] [concurrency...=1 8 32]}.
 */
public final class SqlBench {

    private static final String[] QUESTIONS = {"Hello", "What is a list?", "Tell me about Flink.", "Why is the sky blue?",
        "Name three colors.", "Count to five.", "What is a stream?", "Explain keyed state.", "Say something kind.",
        "How do exceptions work?", "What is Kafka?", "Describe a tree."};

    private SqlBench() {}

    public static void main(String[] args) throws Exception {
        int count = args.length > 0 ? Integer.parseInt(args[0]) : 64;
        int maxTokens = args.length > 1 ? Integer.parseInt(args[1]) : 16;
        List<Integer> concurrency = new ArrayList<>();
        for (int i = 2; i < args.length; i++) {
            concurrency.add(Integer.parseInt(args[i]));
        }
        if (concurrency.isEmpty()) {
            concurrency = List.of(1, 8, 32);
        }
        try (LocalKafka kafka = LocalKafka.start(0)) {
            kafka.createTopics(Topics.ALL);
            send(kafka, "bench.warmup.prompts", 8, maxTokens);
            send(kafka, Topics.PROMPTS, count, maxTokens);
            sql(kafka, "bench.warmup.prompts", "bench.warmup.generations", 8, 8, maxTokens);
            System.out.printf("prompts=%d max_tokens=%d greedy, one TaskManager slot, 2-core host%n", count, maxTokens);
            for (int c : concurrency) {
                String out = "bench.c" + c + ".generations";
                long start = System.nanoTime();
                sql(kafka, Topics.PROMPTS, out, count, c, maxTokens);
                report("sql max-concurrent-operations=" + c, read(kafka, out, count), start);
            }
            Configuration conf = new Configuration();
            conf.set(JobOptions.BOOTSTRAP_SERVERS, kafka.bootstrapServers());
            conf.set(JobOptions.STEP_MAX_SEQUENCES, 32);
            conf.set(JobOptions.DELIVERY, "at-least-once");
            long start = System.nanoTime();
            JobClient job = LocalRunner.start(conf, null, "moestream-sql-bench");
            try {
                report("datastream job (max-sequences 32)", read(kafka, Topics.GENERATIONS, count), start);
            } finally {
                job.cancel().get();
            }
        }
    }

    private static void sql(LocalKafka kafka, String in, String out, int count, int concurrency, int maxTokens)
            throws Exception {
        kafka.createTopics(List.of(out));
        String script = """
                SET 'table.exec.async-ml-predict.max-concurrent-operations' = '%d';
                CREATE TABLE prompts (request_id STRING, tenant STRING, text STRING) WITH ('connector' = 'kafka',
                  'topic' = '%s', 'properties.bootstrap.servers' = '%s', 'scan.startup.mode' = 'earliest-offset',
                  'scan.bounded.mode' = 'latest-offset', 'format' = 'moestream-avro', 'moestream-avro.record-type' = 'prompt');
                CREATE TABLE generations (request_id STRING, tenant STRING, text STRING, finish_reason STRING,
                  usage ROW<prompt_tokens INT, cached_tokens INT, generated_tokens INT>,
                  timings ROW<queued_ms BIGINT, prefill_ms BIGINT, decode_ms BIGINT>, model STRING)
                  WITH ('connector' = 'kafka', 'topic' = '%s', 'properties.bootstrap.servers' = '%s',
                  'sink.delivery-guarantee' = 'at-least-once', 'format' = 'moestream-avro',
                  'moestream-avro.record-type' = 'generation');
                CREATE MODEL moe INPUT (prompt STRING)
                  OUTPUT (text STRING, finish_reason STRING, prompt_tokens INT, completion_tokens INT)
                  WITH ('provider' = 'moestream', 'max-tokens' = '%d', 'max-sequences' = '32');
                CREATE TEMPORARY VIEW questions AS SELECT request_id, tenant, text AS prompt FROM prompts;
                INSERT INTO generations SELECT request_id, tenant, text, finish_reason,
                  ROW(prompt_tokens, 0, completion_tokens), ROW(CAST(0 AS BIGINT), CAST(0 AS BIGINT), CAST(0 AS BIGINT)),
                  'moestream' FROM ML_PREDICT(TABLE questions, MODEL moe, DESCRIPTOR(prompt));
                """.formatted(concurrency, in, kafka.bootstrapServers(), out, kafka.bootstrapServers(), maxTokens);
        SqlScript.run(SqlScript.environment(new Configuration()), SqlScript.statements(script), r -> {});
    }

    private static void send(LocalKafka kafka, String topic, int count, int maxTokens) throws Exception {
        kafka.createTopics(List.of(topic));
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        AvroCodec<Prompt> codec = AvroCodec.forPrompt();
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            List<Future<?>> sent = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                Prompt prompt = Prompt.newBuilder().setRequestId(topic + "-" + i).setTenant("bench")
                        .setText(QUESTIONS[i % QUESTIONS.length] + " (" + i + ")").setMaxTokens(maxTokens).build();
                sent.add(producer.send(new ProducerRecord<>(topic, null, codec.encode(prompt))));
            }
            for (Future<?> f : sent) {
                f.get();
            }
        }
    }

    private static Map<String, Generation> read(LocalKafka kafka, String topic, int count) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        AvroCodec<Generation> codec = AvroCodec.forGeneration();
        Map<String, Generation> answers = new HashMap<>();
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
            List<TopicPartition> partitions = List.of(new TopicPartition(topic, 0));
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            long deadline = System.nanoTime() + Duration.ofMinutes(10).toNanos();
            while (answers.size() < count && System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(100))) {
                    Generation g = codec.decode(r.value());
                    answers.put(g.getRequestId().toString(), g);
                }
            }
        }
        if (answers.size() < count) {
            throw new IllegalStateException(topic + ": " + answers.size() + " of " + count + " answers");
        }
        return answers;
    }

    private static void report(String name, Map<String, Generation> answers, long startNanos) {
        double seconds = (System.nanoTime() - startNanos) / 1e9;
        long tokens = answers.values().stream().mapToLong(g -> g.getUsage().getGeneratedTokens()).sum();
        System.out.printf("%-40s rows=%d tokens=%d seconds=%.1f rows/s=%.2f tokens/s=%.1f%n", name, answers.size(), tokens,
                seconds, answers.size() / seconds, tokens / seconds);
    }
}
