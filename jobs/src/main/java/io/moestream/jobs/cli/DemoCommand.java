package io.moestream.jobs.cli;

import io.moestream.jobs.JobOptions;
import io.moestream.jobs.LocalRunner;
import io.moestream.jobs.kafka.LocalKafka;
import io.moestream.jobs.kafka.Topics;
import io.moestream.jobs.sql.SqlScript;
import io.moestream.operators.InferenceConfig;
import io.moestream.operators.ProgressStats;
import io.moestream.schemas.AvroCodec;
import io.moestream.schemas.ContextReady;
import io.moestream.schemas.Document;
import io.moestream.schemas.Generation;
import io.moestream.schemas.InferenceError;
import io.moestream.schemas.Prompt;
import io.moestream.schemas.PromptMode;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.CoreOptions;
import org.apache.flink.core.execution.JobClient;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.Closeable;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Callable;
import java.util.concurrent.Future;

/**
 * {@code demo}: a local Kafka broker, the job on a MiniCluster, a few documents, conversation turns
 * and one malformed record; prints every result as it arrives, then stops everything. With
 * {@code --sql} the prompts are answered by a Flink SQL script through {@code ML_PREDICT} instead.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "Start a local Kafka broker and the job, send sample documents and prompts, print the results, exit.")
public final class DemoCommand implements Callable<Integer> {

    @Option(names = "--model", description = "GGUF model file (default: the bundled trained MoE).")
    Path model;

    @Option(names = "--timeout", description = "Give up after this many seconds (default: ${DEFAULT-VALUE}).", defaultValue = "300")
    int timeoutSeconds;

    @Option(names = "--max-tokens", description = "Tokens per answer (default: ${DEFAULT-VALUE}).", defaultValue = "40")
    int maxTokens;

    @Option(names = "--sql", description = "Answer the prompts through Flink SQL's ML_PREDICT with the moestream model"
            + " provider instead of the DataStream job (stateless: no document or conversation context).")
    boolean sql;

    @Override
    public Integer call() throws Exception {
        long start = System.nanoTime();
        try (LocalKafka kafka = LocalKafka.start(0)) {
            kafka.createTopics(Topics.ALL);
            String servers = kafka.bootstrapServers();
            System.out.println("kafka: local KRaft broker at " + servers);

            if (sql) {
                return sqlDemo(servers, start);
            }
            Configuration conf = new Configuration();
            conf.set(JobOptions.BOOTSTRAP_SERVERS, servers);
            conf.set(JobOptions.CHECKPOINT_INTERVAL, Duration.ofSeconds(1));
            if (model != null) {
                conf.set(JobOptions.MODEL_PATH, CliSupport.existingFile(model, "--model").toAbsolutePath().toString());
            }
            JobClient job = LocalRunner.start(conf, null, "moestream-demo");
            System.out.println("flink: job " + job.getJobID() + " running on a local MiniCluster");
            try (Closeable progress = ProgressStats.startPrinter(System.out, conf.get(JobOptions.PROGRESS_INTERVAL))) {
                DemoTraffic traffic = DemoTraffic.create(maxTokens);
                send(servers, traffic);
                System.out.printf("sent %d document parts, %d prompts and 1 malformed record; waiting for results "
                        + "(they appear when the checkpoint that covers them commits)%n",
                        traffic.documents().size(), traffic.prompts().size());
                boolean complete = printResults(servers, traffic.prompts().size(), 1, traffic.documentCount());
                System.out.printf("demo finished in %.1f s%n", (System.nanoTime() - start) / 1e9);
                return complete ? 0 : 1;
            } finally {
                job.cancel().get();
            }
        }
    }

    /**
     * The same traffic, answered by {@code sql/demo.sql} ({@code ML_PREDICT}, a bounded read of the
     * prompts topic, written to the generations topic) on a MiniCluster, then printed from Kafka.
     */
    private int sqlDemo(String servers, long start) throws Exception {
        DemoTraffic traffic = DemoTraffic.create(maxTokens);
        send(servers, traffic);
        System.out.printf("sent %d document parts, %d prompts and 1 malformed record; answering the prompts with"
                + " ML_PREDICT (stateless: each prompt from its own text; the malformed record is skipped by"
                + " 'moestream-avro.ignore-parse-errors')%n", traffic.documents().size(), traffic.prompts().size());
        String script;
        try (var in = DemoCommand.class.getResourceAsStream("/sql/demo.sql")) {
            script = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        String modelPath = model == null ? InferenceConfig.BUNDLED_MODEL
                : CliSupport.existingFile(model, "--model").toAbsolutePath().toString();
        Configuration conf = new Configuration();
        conf.set(CoreOptions.DEFAULT_PARALLELISM, 1);
        SqlScript.run(SqlScript.environment(conf), SqlScript.statements(SqlScript.substitute(script, Map.of(
                "bootstrap-servers", servers, "model-path", modelPath, "max-tokens", Integer.toString(maxTokens)))),
                row -> System.out.println(row));
        boolean complete = printResults(servers, traffic.prompts().size(), 0, 0);
        System.out.printf("demo finished in %.1f s%n", (System.nanoTime() - start) / 1e9);
        return complete ? 0 : 1;
    }

    private static void send(String servers, DemoTraffic traffic) throws Exception {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, servers);
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        try (KafkaProducer<byte[], byte[]> producer =
                     new KafkaProducer<>(props, new ByteArraySerializer(), new ByteArraySerializer())) {
            List<Future<?>> sent = new ArrayList<>();
            AvroCodec<Document> documents = AvroCodec.forDocument();
            for (Document d : traffic.documents()) {
                sent.add(producer.send(new ProducerRecord<>(Topics.DOCUMENTS,
                        utf8(d.getTenant() + "/" + d.getDocumentId()), documents.encode(d))));
            }
            AvroCodec<Prompt> prompts = AvroCodec.forPrompt();
            for (Prompt p : traffic.prompts()) {
                String key = p.getContextId() == null ? p.getRequestId() : p.getTenant() + "/" + p.getContextId();
                sent.add(producer.send(new ProducerRecord<>(Topics.PROMPTS, utf8(key), prompts.encode(p))));
            }
            // a producer that writes JSON instead of Avro: the job answers with an error record
            sent.add(producer.send(new ProducerRecord<>(Topics.PROMPTS, utf8("acme/oops"),
                    utf8("{\"request_id\": \"oops-1\", \"tenant\": \"acme\", \"text\": \"not avro\"}"))));
            for (Future<?> f : sent) {
                f.get();
            }
        }
    }

    /** Prints results until all expected records arrived or the timeout passed; true if all arrived. */
    private boolean printResults(String servers, int generations, int errors, int contexts) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, servers);
        props.put(ConsumerConfig.GROUP_ID_CONFIG, "moestream-demo-reader");
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        AvroCodec<Generation> generationCodec = AvroCodec.forGeneration();
        AvroCodec<InferenceError> errorCodec = AvroCodec.forInferenceError();
        AvroCodec<ContextReady> contextCodec = AvroCodec.forContextReady();
        int seenGenerations = 0;
        int seenErrors = 0;
        int seenContexts = 0;
        long deadline = System.nanoTime() + Duration.ofSeconds(timeoutSeconds).toNanos();
        try (KafkaConsumer<byte[], byte[]> consumer =
                     new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            consumer.subscribe(List.of(Topics.GENERATIONS, Topics.ERRORS, Topics.CONTEXTS));
            while ((seenGenerations < generations || seenErrors < errors || seenContexts < contexts)
                    && System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(500))) {
                    switch (r.topic()) {
                        case Topics.GENERATIONS -> {
                            seenGenerations++;
                            print(generationCodec.decode(r.value()));
                        }
                        case Topics.ERRORS -> {
                            seenErrors++;
                            InferenceError e = errorCodec.decode(r.value());
                            System.out.printf("[error]      %s (request %s): %s%n", e.getCode(), e.getRequestId(), e.getMessage());
                        }
                        case Topics.CONTEXTS -> {
                            seenContexts++;
                            ContextReady c = contextCodec.decode(r.value());
                            System.out.printf(java.util.Locale.ROOT,
                                    "[context]    %s/%s ready: %d tokens, %,d KV bytes (%.2fx smaller than fp16), prefill %d ms%n",
                                    c.getTenant(), c.getContextId(), c.getTokens(), c.getKvBytes(), c.getCompressionRatio(),
                                    c.getPrefillMs());
                        }
                        default -> throw new IllegalStateException("unexpected topic " + r.topic());
                    }
                }
            }
        }
        boolean complete = seenGenerations >= generations && seenErrors >= errors && seenContexts >= contexts;
        if (!complete) {
            System.err.printf("timed out after %d s: %d/%d generations, %d/%d errors, %d/%d contexts%n",
                    timeoutSeconds, seenGenerations, generations, seenErrors, errors, seenContexts, contexts);
        }
        return complete;
    }

    private static void print(Generation g) {
        String where = g.getContextId() == null ? g.getTenant() : g.getTenant() + "/" + g.getContextId();
        System.out.printf("[generation] %s %s (%d prompt + %d cached tokens -> %d, %s): %s%n",
                where, g.getRequestId(), g.getUsage().getPromptTokens(), g.getUsage().getCachedTokens(),
                g.getUsage().getGeneratedTokens(), g.getFinishReason(), oneLine(g.getText()));
    }

    private static String oneLine(String text) {
        return '"' + text.replace("\n", "\\n") + '"';
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /** The sample traffic: two documents (one in two parts), questions on them, a conversation, a stateless prompt. */
    record DemoTraffic(List<Document> documents, List<Prompt> prompts, int documentCount) {

        static DemoTraffic create(int maxTokens) {
            List<Document> docs = List.of(
                    doc("acme", "lists", 0, false,
                            "Lists are mutable sequences, typically used to store collections of homogeneous items. "),
                    doc("acme", "lists", 1, true,
                            "The list type supports the common and mutable sequence operations. To add an item to the end "
                                    + "of a list, use append; to sort a list in place, use sort."),
                    doc("globex", "exceptions", 0, true,
                            "Exceptions are raised when errors are detected during execution. An exception that is not "
                                    + "handled is printed with a traceback, and the program stops."));
            List<Prompt> prompts = List.of(
                    prompt("q-lists-1", "acme", "lists", PromptMode.DOCUMENT, "To add a new item to a list,", maxTokens, 0f),
                    prompt("q-lists-2", "acme", "lists", PromptMode.DOCUMENT, "The sort method", maxTokens, 0f),
                    prompt("q-exc-1", "globex", "exceptions", PromptMode.DOCUMENT,
                            "When an exception is raised inside a function,", maxTokens, 0f),
                    prompt("chat-1-turn-1", "acme", "chat-1", PromptMode.CONVERSATION, "The import statement", maxTokens, 0f),
                    prompt("chat-1-turn-2", "acme", "chat-1", PromptMode.CONVERSATION,
                            "\n\nA module can contain", maxTokens, 0.7f),
                    prompt("once-1", "acme", null, PromptMode.STATELESS,
                            "Strings in Python are immutable sequences of", maxTokens, 0f));
            return new DemoTraffic(docs, prompts, 2);
        }

        private static Document doc(String tenant, String id, int part, boolean last, String text) {
            return Document.newBuilder().setTenant(tenant).setDocumentId(id).setPart(part).setLast(last).setText(text).build();
        }

        private static Prompt prompt(String id, String tenant, String context, PromptMode mode, String text,
                                     int maxTokens, float temperature) {
            return Prompt.newBuilder().setRequestId(id).setTenant(tenant).setContextId(context).setMode(mode)
                    .setText(text).setMaxTokens(maxTokens).setTemperature(temperature).setSeed(42L).build();
        }
    }
}
