package io.moestream.jobs;

import io.moestream.operators.AvroDecodeFunction;
import io.moestream.operators.InferenceConfig;
import io.moestream.operators.InferenceOperator;
import io.moestream.operators.OutputTags;
import io.moestream.operators.RawRecord;
import io.moestream.schemas.ContextReady;
import io.moestream.schemas.Document;
import io.moestream.schemas.Generation;
import io.moestream.schemas.InferenceError;
import io.moestream.schemas.Prompt;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.sink.KafkaSinkBuilder;
import org.apache.flink.connector.kafka.sink.TransactionNamingStrategy;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.util.ParameterTool;
import org.apache.kafka.clients.consumer.OffsetResetStrategy;

import java.nio.file.Path;
import java.util.Properties;

/**
 * The moestream job: Kafka (documents, prompts) → Avro decode → keyBy(tenant, context) →
 * inference operator → Kafka (generations, errors, contexts), exactly once unless {@code moestream.sink.delivery}
 * says at-least-once. Wiring and options only;
 * the behaviour lives in {@code operators} and {@code model-runtime}.
 *
 * <p>Submit with {@code flink run -c io.moestream.jobs.MoeStreamJob moestream.jar --moestream.kafka.bootstrap-servers HOST:PORT ...};
 * every {@link JobOptions} key can be given as {@code --key value}.
 */
public final class MoeStreamJob {

    /** How long an exactly-once sink's producer lets records gather before a produce request. */
    static final int EXACTLY_ONCE_LINGER_MS = 100;

    private MoeStreamJob() {}

    public static void main(String[] args) throws Exception {
        Configuration conf = JobOptions.withStateDefaults(ParameterTool.fromArgs(args).getConfiguration());
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        if (!conf.contains(JobOptions.PARALLELISM)) {
            // submitted to a cluster: the client's parallelism (flink run -p, parallelism.default, the
            // Kubernetes operator's job.parallelism), so a rescale needs no change to the job's arguments
            conf.set(JobOptions.PARALLELISM, env.getParallelism());
        }
        build(env, conf);
        env.execute("moestream");
    }

    /**
     * Adds the whole pipeline to {@code env}; checkpointing is switched on with the configured interval.
     * The state backend comes from the environment's configuration: create it from
     * {@link JobOptions#withStateDefaults} (RocksDB with incremental checkpoints unless overridden).
     */
    public static void build(StreamExecutionEnvironment env, Configuration conf) {
        String servers = conf.get(JobOptions.BOOTSTRAP_SERVERS);
        int parallelism = conf.get(JobOptions.PARALLELISM);
        env.setParallelism(parallelism);
        env.enableCheckpointing(conf.get(JobOptions.CHECKPOINT_INTERVAL).toMillis());

        DataStream<RawRecord> documentBytes = source(env, conf, conf.get(JobOptions.TOPIC_DOCUMENTS), "documents");
        DataStream<RawRecord> promptBytes = source(env, conf, conf.get(JobOptions.TOPIC_PROMPTS), "prompts");

        int maxTokensCap = conf.get(JobOptions.MAX_TOKENS_CAP);
        WriterSchemas older = WriterSchemas.from(conf);
        SingleOutputStreamOperator<Document> documents = documentBytes
                .process(AvroDecodeFunction.documents(older.documentCodec()))
                .name("decode-documents").uid("decode-documents");
        SingleOutputStreamOperator<Prompt> prompts = promptBytes
                .process(AvroDecodeFunction.prompts(older.promptCodec(), maxTokensCap))
                .name("decode-prompts").uid("decode-prompts");

        InferenceConfig config = new InferenceConfig(
                conf.getOptional(JobOptions.MODEL_PATH).orElse(InferenceConfig.BUNDLED_MODEL),
                conf.get(JobOptions.STEP_MAX_SEQUENCES),
                conf.get(JobOptions.STEP_TOKEN_BUDGET),
                conf.get(JobOptions.STEP_ATTENTION_BUDGET),
                conf.get(JobOptions.QUEUE_MAX),
                conf.get(JobOptions.TENANT_SHARE),
                maxTokensCap,
                conf.get(JobOptions.DOCUMENT_WAIT).toMillis(),
                conf.get(JobOptions.DOCUMENT_MAX_TOKENS),
                conf.get(JobOptions.DUPLICATE_WINDOW).toMillis(),
                null,
                JobOptions.kvState(conf),
                conf.get(JobOptions.BACKEND),
                JobOptions.chatTemplate(conf));
        SingleOutputStreamOperator<Generation> generations = InferenceOperator.apply(documents, prompts, config);

        DataStream<InferenceError> errors = documents.getSideOutput(OutputTags.ERRORS)
                .union(prompts.getSideOutput(OutputTags.ERRORS), generations.getSideOutput(OutputTags.ERRORS));
        DataStream<ContextReady> contexts = generations.getSideOutput(OutputTags.CONTEXTS);

        String prefix = conf.get(JobOptions.TRANSACTIONAL_ID_PREFIX);
        DeliveryGuarantee delivery = JobOptions.delivery(conf);
        TransactionNamingStrategy naming = JobOptions.transactionNaming(conf);
        generations.sinkTo(sink(servers, delivery, naming, prefix + "-generations", new AvroRecordSerializer<>(
                        conf.get(JobOptions.TOPIC_GENERATIONS), Generation.class, MoeStreamJob::generationKey)))
                .name("generations-sink").uid("generations-sink");
        errors.sinkTo(sink(servers, delivery, naming, prefix + "-errors", new AvroRecordSerializer<>(
                        conf.get(JobOptions.TOPIC_ERRORS), InferenceError.class, MoeStreamJob::errorKey)))
                .name("errors-sink").uid("errors-sink");
        contexts.sinkTo(sink(servers, delivery, naming, prefix + "-contexts", new AvroRecordSerializer<>(
                        conf.get(JobOptions.TOPIC_CONTEXTS), ContextReady.class, c -> c.getTenant() + "/" + c.getContextId())))
                .name("contexts-sink").uid("contexts-sink");
    }

    private static DataStream<RawRecord> source(StreamExecutionEnvironment env, Configuration conf, String topic, String name) {
        KafkaSource<RawRecord> source = KafkaSource.<RawRecord>builder()
                .setBootstrapServers(conf.get(JobOptions.BOOTSTRAP_SERVERS))
                .setGroupId(conf.get(JobOptions.GROUP_ID))
                .setTopics(topic)
                .setStartingOffsets(OffsetsInitializer.committedOffsets(OffsetResetStrategy.EARLIEST))
                .setDeserializer(new RawRecordDeserializer())
                .setProperty("isolation.level", "read_committed")
                .build();
        return env.fromSource(source, WatermarkStrategy.noWatermarks(), name + "-source").uid(name + "-source");
    }

    private static <T> KafkaSink<T> sink(
            String servers, DeliveryGuarantee delivery, TransactionNamingStrategy naming, String transactionalIdPrefix,
            org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema<T> serializer) {
        KafkaSinkBuilder<T> builder = KafkaSink.<T>builder()
                .setBootstrapServers(servers)
                .setRecordSerializer(serializer)
                .setDeliveryGuarantee(delivery)
                .setTransactionNamingStrategy(naming)
                .setTransactionalIdPrefix(transactionalIdPrefix);
        sinkProducerProperties(delivery).forEach((k, v) -> builder.setProperty((String) k, (String) v));
        return builder.build();
    }

    /**
     * The sinks' producer settings. Exactly once: the broker caps transactions at 15 min, so the
     * producer's default timeout (1 h) would be refused; and records wait up to
     * {@link #EXACTLY_ONCE_LINGER_MS} to share a produce request, which delays nothing a reader sees
     * (an answer is visible only when the checkpoint after it commits, and the sink flushes at every
     * checkpoint) but cuts the broker's produce requests.
     */
    static Properties sinkProducerProperties(DeliveryGuarantee delivery) {
        Properties p = new Properties();
        p.setProperty("transaction.timeout.ms", "60000");
        if (delivery == DeliveryGuarantee.EXACTLY_ONCE) {
            p.setProperty("linger.ms", Integer.toString(EXACTLY_ONCE_LINGER_MS));
        }
        return p;
    }

    private static String generationKey(Generation g) {
        return g.getContextId() == null ? g.getRequestId() : g.getTenant() + "/" + g.getContextId();
    }

    private static String errorKey(InferenceError e) {
        if (e.getTenant() != null && e.getContextId() != null) {
            return e.getTenant() + "/" + e.getContextId();
        }
        return e.getRequestId();
    }

}
