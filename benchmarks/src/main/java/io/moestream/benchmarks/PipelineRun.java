package io.moestream.benchmarks;

import io.moestream.jobs.JobOptions;
import io.moestream.jobs.LocalRunner;
import io.moestream.jobs.kafka.LocalKafka;
import io.moestream.jobs.kafka.RecordKeys;
import io.moestream.jobs.kafka.Topics;
import io.moestream.operators.ProgressStats;
import io.moestream.schemas.AvroCodec;
import io.moestream.schemas.Document;
import io.moestream.schemas.Generation;
import io.moestream.schemas.Prompt;
import org.apache.flink.configuration.CheckpointingOptions;
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

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.IntFunction;

/**
 * The request mix through the product: in-process Kafka broker → the job on a local MiniCluster
 * (parallelism 1, one engine) → Kafka, exactly once, read back with {@code read_committed}.
 * Documents and the warm-up prompts are answered before the clock starts; then, in each measured
 * round, every prompt of the round is sent at once and the clock stops when the last answer is
 * visible. Before each pipeline round the engine-alone run measures the same round in the same JVM
 * (the job idle meanwhile), so each ratio compares runs a second apart.
 */
final class PipelineRun {

    private static final AvroCodec<Document> DOCUMENTS = AvroCodec.forDocument();
    private static final AvroCodec<Prompt> PROMPTS = AvroCodec.forPrompt();
    private static final AvroCodec<Generation> GENERATIONS = AvroCodec.forGeneration();

    /**
     * {@code lastWrittenSeconds}: from the first send until the last answer was written (seen by a
     * {@code read_uncommitted} reader); {@code commitWaitMs}: written to visible, per answer;
     * {@code forwardSeconds}: the operator's engine thread computing forward steps;
     * {@code handoverWaitSeconds}: that thread waiting for the task thread's hand-over.
     */
    record Result(double seconds, double lastWrittenSeconds, double cpuSeconds, double jitSeconds, long generatedTokens, int requests,
                  List<Long> visibleLatencyMs, List<Long> commitWaitMs, List<Long> operatorLatencyMs,
                  long steps, double sequencesPerStep, double forwardSeconds, double handoverWaitSeconds) {}

    /** One measured round: the engine alone, then the pipeline, on the same prompts. */
    record Round(EngineRun.Result engine, Result pipeline) {}

    /** The measured rounds and how the pipeline's warm-up ended. */
    record Rounds(List<Round> rounds, WarmUp.Result warmUp) {}

    /**
     * @param engineRound runs the engine alone on the prompts of round i (called before pipeline round i)
     * @param jobConf     more job or Flink settings
     * @param profile     {@code off}, {@code cpu} or {@code wall}: profiles the first pipeline round
     */
    static Rounds run(Path model, RequestMix mix, int rounds, IntFunction<EngineRun.Result> engineRound,
                      IntFunction<List<Prompt>> warmUp, int batchSize, Duration checkpointInterval,
                      boolean unaligned, String delivery, Map<String, String> jobConf, String profile, Path profileOut)
            throws Exception {
        try (LocalKafka kafka = LocalKafka.start(0)) {
            kafka.createTopics(Topics.ALL);
            Configuration conf = new Configuration();
            conf.set(JobOptions.BOOTSTRAP_SERVERS, kafka.bootstrapServers());
            conf.set(JobOptions.MODEL_PATH, model.toString());
            conf.set(JobOptions.STEP_MAX_SEQUENCES, batchSize);
            conf.set(JobOptions.CHECKPOINT_INTERVAL, checkpointInterval);
            conf.set(CheckpointingOptions.ENABLE_UNALIGNED, unaligned);
            conf.set(JobOptions.DELIVERY, delivery);
            conf.addAll(Configuration.fromMap(jobConf));
            JobClient job = LocalRunner.start(conf, null, "moestream-pipeline-bench");
            // every client (the written-watch too) is made before the warm-up: a client made in the
            // measured window loads and deoptimizes Kafka's network code, which the broker, the job
            // and the clients share, and the JIT recompiles it inside the window
            try (KafkaProducer<byte[], byte[]> producer = producer(kafka);
                 KafkaConsumer<byte[], byte[]> consumer = consumer(kafka);
                 WrittenWatch written = WrittenWatch.start(kafka, Topics.GENERATIONS)) {
                // documents answered, then warm-up rounds until the JIT is quiet (the engine-alone run
                // gets the same rule), so the pipeline's code is compiled too
                List<Future<?>> sent = new ArrayList<>();
                for (Document d : mix.documents()) {
                    sent.add(producer.send(new ProducerRecord<>(Topics.DOCUMENTS, RecordKeys.keyBytes(d),
                            DOCUMENTS.encode(d))));
                }
                for (Future<?> f : sent) {
                    f.get();
                }
                Map<String, Long> visibleAt = new HashMap<>();
                Map<String, Generation> answers = new HashMap<>();
                WarmUp.Result warm = WarmUp.untilQuiet("pipeline", round -> {
                    List<Prompt> prompts = warmUp.apply(round);
                    List<Future<?>> warmSent = new ArrayList<>();
                    for (Prompt p : prompts) {
                        warmSent.add(producer.send(new ProducerRecord<>(Topics.PROMPTS, RecordKeys.keyBytes(p),
                                PROMPTS.encode(p))));
                    }
                    for (Future<?> f : warmSent) {
                        f.get();
                    }
                    drain(consumer, prompts.size(), visibleAt, answers, Duration.ofMinutes(3));
                    if (answers.size() < prompts.size()) {
                        throw new IllegalStateException("the job answered " + answers.size() + " of " + prompts.size()
                                + " warm-up prompts");
                    }
                    answers.clear();
                    visibleAt.clear();
                });

                List<Round> measured = new ArrayList<>();
                for (int i = 0; i < rounds; i++) {
                    EngineRun.Result engine = engineRound.apply(i);
                    System.err.printf("round %d: engine alone %.1f tokens/s%n", i + 1, engine.generatedTokens() / engine.seconds());
                    Result pipeline = measure(mix.round(i), producer, consumer, written, i == 0 ? profile : "off", profileOut);
                    System.err.printf("round %d: pipeline %.1f tokens/s%n", i + 1, pipeline.generatedTokens() / pipeline.seconds());
                    measured.add(new Round(engine, pipeline));
                }
                return new Rounds(measured, warm);
            } finally {
                job.cancel().get(60, TimeUnit.SECONDS);
            }
        }
    }

    /** One measured pipeline round: {@code mix}'s prompts sent at once, until the last answer is visible. */
    private static Result measure(RequestMix mix, KafkaProducer<byte[], byte[]> producer, KafkaConsumer<byte[], byte[]> consumer,
                                  WrittenWatch written, String profile, Path profileOut) throws Exception {
        // encoded before the clock starts: the client's work is not the pipeline's
        List<byte[]> keys = new ArrayList<>();
        List<byte[]> values = new ArrayList<>();
        for (Prompt p : mix.prompts()) {
            keys.add(RecordKeys.keyBytes(p));
            values.add(PROMPTS.encode(p));
        }
        long steps0 = ProgressStats.steps();
        long sequences0 = ProgressStats.stepSequences();
        long forward0 = ProgressStats.forwardNanos();
        long handoverWait0 = ProgressStats.handoverWaitNanos();
        Map<String, Long> sentAt = new ConcurrentHashMap<>();
        Map<String, Long> visibleAt = new HashMap<>();
        Map<String, Generation> answers = new HashMap<>();
        PipelineProfiler profiler = profile.equals("off") ? null : PipelineProfiler.start(profile, profileOut);
        long start = System.nanoTime();
        long cpuStart = ProcessCpu.nanos();
        long jitStart = ProcessCpu.compilerNanos();
        List<Future<?>> sent = new ArrayList<>();
        for (int i = 0; i < mix.prompts().size(); i++) {
            Prompt p = mix.prompts().get(i);
            sentAt.put(p.getRequestId(), System.nanoTime());
            sent.add(producer.send(new ProducerRecord<>(Topics.PROMPTS, keys.get(i), values.get(i))));
        }
        for (Future<?> f : sent) {
            f.get();
        }
        drain(consumer, mix.prompts().size(), visibleAt, answers, Duration.ofMinutes(30));
        double cpuSeconds = (ProcessCpu.nanos() - cpuStart) / 1e9;
        double jitSeconds = (ProcessCpu.compilerNanos() - jitStart) / 1e9;
        if (profiler != null) {
            profiler.stop();
        }
        long end = visibleAt.values().stream().mapToLong(Long::longValue).max().orElse(System.nanoTime());
        long lastWritten = answers.keySet().stream().map(written.writtenAt()::get).filter(Objects::nonNull)
                .mapToLong(Long::longValue).max().orElse(end);
        long steps = ProgressStats.steps() - steps0;
        double sequencesPerStep = (ProgressStats.stepSequences() - sequences0) / (double) Math.max(1, steps);
        if (answers.size() < mix.prompts().size()) {
            throw new IllegalStateException("only " + answers.size() + " of " + mix.prompts().size() + " answered");
        }
        List<Long> visible = new ArrayList<>();
        List<Long> commitWait = new ArrayList<>();
        List<Long> operator = new ArrayList<>();
        long generated = 0;
        for (Generation g : answers.values()) {
            visible.add(TimeUnit.NANOSECONDS.toMillis(visibleAt.get(g.getRequestId()) - sentAt.get(g.getRequestId())));
            Long writtenAt = written.writtenAt().get(g.getRequestId());
            if (writtenAt != null) {
                commitWait.add(Math.max(0, TimeUnit.NANOSECONDS.toMillis(visibleAt.get(g.getRequestId()) - writtenAt)));
            }
            operator.add(g.getTimings().getQueuedMs() + g.getTimings().getPrefillMs() + g.getTimings().getDecodeMs());
            generated += g.getUsage().getGeneratedTokens();
        }
        return new Result((end - start) / 1e9, (lastWritten - start) / 1e9, cpuSeconds, jitSeconds, generated, answers.size(),
                visible, commitWait, operator, steps, sequencesPerStep, (ProgressStats.forwardNanos() - forward0) / 1e9,
                (ProgressStats.handoverWaitNanos() - handoverWait0) / 1e9);
    }

    private static void drain(KafkaConsumer<byte[], byte[]> consumer, int count, Map<String, Long> visibleAt,
                              Map<String, Generation> answers, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (answers.size() < count && System.nanoTime() < deadline) {
            for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(50))) {
                long now = System.nanoTime();
                Generation g = GENERATIONS.decode(r.value());
                answers.putIfAbsent(g.getRequestId(), g);
                visibleAt.putIfAbsent(g.getRequestId(), now);
            }
        }
    }

    private static KafkaProducer<byte[], byte[]> producer(LocalKafka kafka) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "0");
        return new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
    }

    private static KafkaConsumer<byte[], byte[]> consumer(LocalKafka kafka) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
        p.put(ConsumerConfig.GROUP_ID_CONFIG, "pipeline-bench");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
        List<TopicPartition> partitions = consumer.partitionsFor(Topics.GENERATIONS).stream()
                .map(i -> new TopicPartition(i.topic(), i.partition())).toList();
        consumer.assign(partitions);
        consumer.seekToBeginning(partitions);
        return consumer;
    }

    private PipelineRun() {}
}
