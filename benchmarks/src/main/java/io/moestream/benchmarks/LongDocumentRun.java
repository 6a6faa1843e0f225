package io.moestream.benchmarks;

import io.moestream.jobs.JobOptions;
import io.moestream.jobs.MoeStreamJob;
import io.moestream.jobs.kafka.LocalKafka;
import io.moestream.jobs.kafka.RecordKeys;
import io.moestream.jobs.kafka.Topics;
import io.moestream.operators.InferenceConfig;
import io.moestream.operators.ProgressStats;
import io.moestream.runtime.gguf.GgmlType;
import io.moestream.runtime.model.Model;
import io.moestream.runtime.synthetic.SyntheticModels;
import io.moestream.runtime.synthetic.SyntheticSpec;
import io.moestream.runtime.tokenizer.Tokenizer;
import io.moestream.schemas.AvroCodec;
import io.moestream.schemas.ContextReady;
import io.moestream.schemas.Document;
import io.moestream.schemas.Generation;
import io.moestream.schemas.InferenceError;
import io.moestream.schemas.Prompt;
import io.moestream.schemas.PromptMode;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichMapFunction;
import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.JobManagerOptions;
import org.apache.flink.configuration.RestartStrategyOptions;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
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
 * A long document end to end: a synthetic model with a 33,280-token context ({@code make-model
 * --preset long}), a document of {@code --tokens} tokens (32,768) sent in parts through the
 * in-process broker into the job on a MiniCluster with RocksDB state (incremental checkpoints), a
 * task failure injected in the middle of the ingestion (the job restarts from its latest checkpoint
 * and prefills again only the parts not yet stored), then a question on the cached document and the
 * same question with the whole document in a STATELESS prompt (re-prefilled). Prints one JSON object:
 * ingest tok/s, question TTFT cached vs re-prefilled, the longest forward step and the longest
 * step-loop mailbox action during the ingestion, {@code -Xmx} and the peak heap. Run by {@code benchmarks/run-long-document.sh}.
 */
public final class LongDocumentRun {

    private static final String TENANT = "acme";
    private static final String DOC = "long";
    private static final String QUESTION = " Which license grants the copyright?";

    private LongDocumentRun() {}

    public static void main(String[] args) throws Exception {
        Map<String, String> opts = new LinkedHashMap<>(Map.of("tokens", "32768", "part-tokens", "2048",
                "checkpoint-interval-ms", "2000", "token-budget", "256",
                "attention-budget", String.valueOf(InferenceConfig.DEFAULT_ATTENTION_BUDGET), "out", ""));
        for (int i = 0; i + 1 < args.length; i += 2) {
            if (!args[i].startsWith("--") || !opts.containsKey(args[i].substring(2))) {
                throw new IllegalArgumentException("unknown option " + args[i] + "; options: " + opts.keySet());
            }
            opts.put(args[i].substring(2), args[i + 1]);
        }
        int tokens = Integer.parseInt(opts.get("tokens"));
        int partTokens = Integer.parseInt(opts.get("part-tokens"));
        for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
            pool.resetPeakUsage();
        }
        Path dir = Files.createTempDirectory("moestream-long-document-");
        Path modelFile = dir.resolve("synthetic-long.gguf");
        SyntheticModels.write(SyntheticSpec.longContext(2001), GgmlType.F32, modelFile);
        List<String> parts;
        try (Model model = Model.load(modelFile)) {
            parts = document(model.tokenizer(), tokens, partTokens);
        }
        int documentTokens = count(modelFile, parts);
        System.err.printf(Locale.ROOT, "document: %,d tokens in %d parts%n", documentTokens, parts.size());

        Map<String, Object> result = new LinkedHashMap<>();
        result.put("max_heap_mb", Runtime.getRuntime().maxMemory() >> 20);
        result.put("document_tokens", documentTokens);
        result.put("parts", parts.size());
        result.put("token_budget", Integer.parseInt(opts.get("token-budget")));
        result.put("attention_budget", Long.parseLong(opts.get("attention-budget")));
        try (LocalKafka kafka = LocalKafka.start(0)) {
            kafka.createTopics(Topics.ALL);
            Configuration conf = new Configuration();
            conf.set(JobOptions.BOOTSTRAP_SERVERS, kafka.bootstrapServers());
            conf.set(JobOptions.MODEL_PATH, modelFile.toString());
            conf.set(JobOptions.CHECKPOINT_INTERVAL, Duration.ofMillis(Long.parseLong(opts.get("checkpoint-interval-ms"))));
            conf.set(JobOptions.PARALLELISM, 1);
            conf.set(JobOptions.STEP_TOKEN_BUDGET, Integer.parseInt(opts.get("token-budget")));
            conf.set(JobOptions.STEP_ATTENTION_BUDGET, Long.parseLong(opts.get("attention-budget")));
            conf.set(CheckpointingOptions.CHECKPOINTS_DIRECTORY, dir.resolve("checkpoints").toUri().toString());
            conf.set(RestartStrategyOptions.RESTART_STRATEGY, "fixed-delay");
            conf.set(RestartStrategyOptions.RESTART_STRATEGY_FIXED_DELAY_ATTEMPTS, 3);
            conf.set(RestartStrategyOptions.RESTART_STRATEGY_FIXED_DELAY_DELAY, Duration.ofMillis(200));
            conf.set(JobManagerOptions.EXECUTION_FAILOVER_STRATEGY, "full"); // a failure restarts every task
            Configuration flink = JobOptions.withStateDefaults(conf);
            result.put("state_backend", flink.getString("state.backend.type", "?"));
            StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(1, flink);
            MoeStreamJob.build(env, flink);
            env.fromSequence(0, Long.MAX_VALUE).name("failure-injector").setParallelism(1)
                    .map(new FailOnce()).setParallelism(1)
                    .sinkTo(new DiscardingSink<>()).setParallelism(1);
            JobClient job = env.executeAsync("moestream-long-document");
            try (KafkaProducer<byte[], byte[]> producer = producer(kafka);
                 KafkaConsumer<byte[], byte[]> consumer = consumer(kafka)) {
                ingest(producer, consumer, parts, documentTokens, result);
                ask(producer, consumer, parts, result);
            } finally {
                job.cancel().get(60, TimeUnit.SECONDS);
            }
        }
        long peak = 0;
        for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
            if (pool.getType() == MemoryType.HEAP) {
                peak += pool.getPeakUsage().getUsed();
            }
        }
        result.put("peak_heap_mb", peak >> 20);
        String json = new com.fasterxml.jackson.databind.ObjectMapper().writerWithDefaultPrettyPrinter()
                .writeValueAsString(result);
        System.out.println(json);
        if (!opts.get("out").isEmpty()) {
            Files.writeString(Path.of(opts.get("out")), json + "\n");
        }
    }

    /** Sends the parts, fails a task once half of the document is prefilled, waits for ContextReady. */
    private static void ingest(KafkaProducer<byte[], byte[]> producer, KafkaConsumer<byte[], byte[]> consumer,
            List<String> parts, int documentTokens, Map<String, Object> result) throws Exception {
        ProgressStats.resetLongestStep();
        long prefilledBefore = ProgressStats.snapshot().prefillTokens();
        long start = System.nanoTime();
        for (int i = 0; i < parts.size(); i++) {
            Document d = Document.newBuilder().setTenant(TENANT).setDocumentId(DOC).setPart(i)
                    .setLast(i == parts.size() - 1).setText(parts.get(i)).build();
            producer.send(new ProducerRecord<>(Topics.DOCUMENTS, RecordKeys.keyBytes(d), AvroCodec.forDocument().encode(d)))
                    .get();
        }
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(60);
        while (ProgressStats.snapshot().prefillTokens() - prefilledBefore < documentTokens / 2) {
            check(deadline, "half of the document was not prefilled");
            Thread.sleep(50);
        }
        long prefilledAtFailure = ProgressStats.snapshot().prefillTokens() - prefilledBefore;
        FailOnce.FAIL.set(true);
        ContextReady ready = null;
        while (ready == null) {
            check(deadline, "no ContextReady");
            for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(50))) {
                if (r.topic().equals(Topics.CONTEXTS)) {
                    ready = AvroCodec.forContextReady().decode(r.value());
                } else if (r.topic().equals(Topics.ERRORS)) {
                    throw new IllegalStateException("error: " + AvroCodec.forInferenceError().decode(r.value()));
                }
            }
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        long prefilled = ProgressStats.snapshot().prefillTokens() - prefilledBefore;
        if (FailOnce.FAILURES.get() != 1) {
            throw new IllegalStateException("expected one injected failure, got " + FailOnce.FAILURES.get());
        }
        result.put("context_ready_tokens", ready.getTokens());
        result.put("kv_bytes", ready.getKvBytes());
        result.put("ingest_wall_s", round(seconds));
        result.put("ingest_tokens_per_s_wall", round(ready.getTokens() / seconds));
        result.put("ingest_tokens_per_s_prefill", round(ready.getTokens() / (ready.getPrefillMs() / 1000.0)));
        result.put("prefilled_at_failure", prefilledAtFailure);
        result.put("prefilled_tokens_total", prefilled);
        result.put("longest_step_ms_during_ingestion", round(ProgressStats.longestStepNanos() / 1e6));
        result.put("longest_loop_action_ms_during_ingestion", round(ProgressStats.longestLoopActionNanos() / 1e6));
        result.put("failures_injected", FailOnce.FAILURES.get());
    }

    /** The question on the cached document, then with the whole document in the prompt. */
    private static void ask(KafkaProducer<byte[], byte[]> producer, KafkaConsumer<byte[], byte[]> consumer,
            List<String> parts, Map<String, Object> result) throws Exception {
        Prompt cached = Prompt.newBuilder().setRequestId("q-cached").setTenant(TENANT).setContextId(DOC)
                .setMode(PromptMode.DOCUMENT).setText(QUESTION).setMaxTokens(8).build();
        Prompt fresh = Prompt.newBuilder().setRequestId("q-fresh").setTenant(TENANT).setContextId(null)
                .setMode(PromptMode.STATELESS).setText(String.join("", parts) + QUESTION).setMaxTokens(8).build();
        for (Prompt p : List.of(cached, fresh)) {
            long sent = System.nanoTime();
            producer.send(new ProducerRecord<>(Topics.PROMPTS, RecordKeys.keyBytes(p), AvroCodec.forPrompt().encode(p))).get();
            Generation g = await(consumer, p.getRequestId());
            String name = p.getMode() == PromptMode.DOCUMENT ? "cached" : "reprefilled";
            result.put("ttft_ms_" + name, g.getTimings().getQueuedMs() + g.getTimings().getPrefillMs());
            result.put("visible_ms_" + name, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - sent));
            result.put("cached_tokens_" + name, g.getUsage().getCachedTokens());
            result.put("prompt_tokens_" + name, g.getUsage().getPromptTokens());
            result.put("answer_" + name, g.getTokenIds());
        }
    }

    private static Generation await(KafkaConsumer<byte[], byte[]> consumer, String requestId) {
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(30);
        while (true) {
            check(deadline, "no answer to " + requestId);
            for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(50))) {
                if (r.topic().equals(Topics.GENERATIONS)) {
                    Generation g = AvroCodec.forGeneration().decode(r.value());
                    if (g.getRequestId().equals(requestId)) {
                        return g;
                    }
                } else if (r.topic().equals(Topics.ERRORS)) {
                    InferenceError e = AvroCodec.forInferenceError().decode(r.value());
                    throw new IllegalStateException("error: " + e);
                }
            }
        }
    }

    /**
     * Parts of about {@code partTokens} tokens each (random words of the model's vocabulary), the whole
     * at most {@code tokens} tokens and within a few tokens of it.
     */
    static List<String> document(Tokenizer tokenizer, int tokens, int partTokens) {
        String[] words = {"license", "copyright", "work", "grant", "source", "object", "form", "notice", "patent",
            "contribution", "derivative", "distribution", "terms", "conditions", "permission", "file", "apache"};
        Random random = new Random(7);
        List<String> parts = new ArrayList<>();
        int total = 0;
        while (total < tokens) {
            StringBuilder part = new StringBuilder();
            int n = 0;
            int budget = Math.min(partTokens, tokens - total);
            while (true) {
                String word = " " + words[random.nextInt(words.length)] + (random.nextInt(12) == 0 ? "." : "");
                int[] ids = parts.isEmpty() ? tokenizer.encodePrompt(part + word) : tokenizer.encode(part + word, false);
                if (ids.length > budget) {
                    break;
                }
                part.append(word);
                n = ids.length;
            }
            if (n == 0) {
                break;
            }
            parts.add(part.toString());
            total += n;
            if (budget - n > 4 && budget < partTokens) {
                break; // the last words do not fit: a few tokens short of the target
            }
        }
        return parts;
    }

    private static int count(Path modelFile, List<String> parts) throws Exception {
        try (Model model = Model.load(modelFile)) {
            int n = 0;
            for (int i = 0; i < parts.size(); i++) {
                n += i == 0 ? model.tokenizer().encodePrompt(parts.get(i)).length
                        : model.tokenizer().encode(parts.get(i), false).length;
            }
            return n;
        }
    }

    private static void check(long deadline, String what) {
        if (System.nanoTime() > deadline) {
            throw new IllegalStateException("timed out: " + what);
        }
    }

    private static double round(double v) {
        return Math.round(v * 10) / 10.0;
    }

    private static KafkaProducer<byte[], byte[]> producer(LocalKafka kafka) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, "4194304");
        return new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
    }

    private static KafkaConsumer<byte[], byte[]> consumer(LocalKafka kafka) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
        p.put(ConsumerConfig.GROUP_ID_CONFIG, "long-document");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
        List<TopicPartition> partitions = new ArrayList<>();
        for (String topic : List.of(Topics.GENERATIONS, Topics.CONTEXTS, Topics.ERRORS)) {
            consumer.partitionsFor(topic).forEach(i -> partitions.add(new TopicPartition(i.topic(), i.partition())));
        }
        consumer.assign(partitions);
        consumer.seekToBeginning(partitions);
        return consumer;
    }

    /** Throws once when {@link #FAIL} is set (the MiniCluster runs in this JVM, so statics reach it). */
    static final class FailOnce extends RichMapFunction<Long, Long> {
        static final AtomicBoolean FAIL = new AtomicBoolean();
        static final AtomicInteger FAILURES = new AtomicInteger();

        @Override
        public void open(OpenContext openContext) {}

        @Override
        public Long map(Long value) throws Exception {
            Thread.sleep(20);
            if (FAIL.compareAndSet(true, false)) {
                FAILURES.incrementAndGet();
                throw new IllegalStateException("injected task failure (long-document run)");
            }
            return value;
        }
    }
}
