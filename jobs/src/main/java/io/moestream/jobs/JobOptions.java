package io.moestream.jobs;

import io.moestream.operators.KvStateConfig;
import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.configuration.StateBackendOptions;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.sink.TransactionNamingStrategy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/**
 * Every setting of the moestream job, as Flink {@link ConfigOption}s. Pass them as
 * {@code --key value} program arguments, in the Flink configuration, or through the CLI launcher's
 * options. The README's configuration table lists the same keys.
 */
public final class JobOptions {

    public static final ConfigOption<String> BOOTSTRAP_SERVERS =
            ConfigOptions.key("moestream.kafka.bootstrap-servers")
                    .stringType()
                    .defaultValue("127.0.0.1:9092")
                    .withDescription("Kafka bootstrap servers for all topics.");

    public static final ConfigOption<String> GROUP_ID =
            ConfigOptions.key("moestream.kafka.group-id")
                    .stringType()
                    .defaultValue("moestream")
                    .withDescription("Consumer group id of the job's Kafka sources.");

    public static final ConfigOption<String> TOPIC_DOCUMENTS =
            ConfigOptions.key("moestream.topic.documents")
                    .stringType()
                    .defaultValue("moe.documents")
                    .withDescription("Input topic of Document records.");

    public static final ConfigOption<String> TOPIC_PROMPTS =
            ConfigOptions.key("moestream.topic.prompts")
                    .stringType()
                    .defaultValue("moe.prompts")
                    .withDescription("Input topic of Prompt records.");

    public static final ConfigOption<String> TOPIC_GENERATIONS =
            ConfigOptions.key("moestream.topic.generations")
                    .stringType()
                    .defaultValue("moe.generations")
                    .withDescription("Output topic of Generation records (exactly once).");

    public static final ConfigOption<String> TOPIC_ERRORS =
            ConfigOptions.key("moestream.topic.errors")
                    .stringType()
                    .defaultValue("moe.errors")
                    .withDescription("Output topic of InferenceError records.");

    public static final ConfigOption<String> TOPIC_CONTEXTS =
            ConfigOptions.key("moestream.topic.contexts")
                    .stringType()
                    .defaultValue("moe.contexts")
                    .withDescription("Output topic of ContextReady records.");

    public static final ConfigOption<String> WRITER_SCHEMAS_DIR =
            ConfigOptions.key("moestream.schemas.writer-dir")
                    .stringType()
                    .noDefaultValue()
                    .withDescription(
                            "Folder of .avsc files: older Prompt or Document schemas that producers may still write with."
                                    + " Records written with one of them are read (fields it lacks take their defaults) instead of"
                                    + " failing as an unknown fingerprint. Each file is checked at start: the job does not start if"
                                    + " one is not a Prompt or Document schema or the current schema cannot read its records.");

    public static final ConfigOption<String> MODEL_PATH =
            ConfigOptions.key("moestream.model.path")
                    .stringType()
                    .noDefaultValue()
                    .withDescription(
                            "GGUF model file, readable on every TaskManager. Unset: the small trained MoE bundled in the jar.");

    public static final ConfigOption<Integer> STEP_MAX_SEQUENCES =
            ConfigOptions.key("moestream.step.max-sequences")
                    .intType()
                    .defaultValue(8)
                    .withDescription("Most requests (of any keys) running together in one engine step (continuous batching).");

    public static final ConfigOption<Integer> STEP_TOKEN_BUDGET =
            ConfigOptions.key("moestream.step.token-budget")
                    .intType()
                    .defaultValue(256)
                    .withDescription("Most tokens computed in one engine step: one per decoding request plus prefill chunks; at least moestream.step.max-sequences and at least 5.");

    public static final ConfigOption<Long> STEP_ATTENTION_BUDGET =
            ConfigOptions.key("moestream.step.attention-budget")
                    .longType()
                    .defaultValue(1L << 23)
                    .withDescription("Most attention work in one engine step: a prefill chunk of n tokens after p cached positions counts n*(p+n), a decode token p+1. A chunk deep in a long context is cut smaller to stay within it (never below 2 tokens), so a step's time stays bounded however long the document.");

    public static final ConfigOption<Integer> QUEUE_MAX =
            ConfigOptions.key("moestream.queue.max")
                    .intType()
                    .defaultValue(256)
                    .withDescription("Back-pressure bound: most requests queued or running per operator subtask; at the bound the operator runs steps instead of reading input.");

    public static final ConfigOption<Double> TENANT_SHARE =
            ConfigOptions.key("moestream.tenant.share")
                    .doubleType()
                    .defaultValue(0.5)
                    .withDescription("While other tenants wait, one tenant gets at most this share (0..1] of a step's sequences and prefill tokens.");

    public static final ConfigOption<Integer> DOCUMENT_MAX_TOKENS =
            ConfigOptions.key("moestream.document.max-tokens")
                    .intType()
                    .defaultValue(0)
                    .withDescription("Largest document in tokens (DOCUMENT_TOO_LARGE beyond it); 0 = the model's context window.");

    public static final ConfigOption<Duration> DUPLICATE_WINDOW =
            ConfigOptions.key("moestream.duplicate.window")
                    .durationType()
                    .defaultValue(Duration.ofMinutes(10))
                    .withDescription("A request_id seen again (same tenant and context) within this time gets a DUPLICATE_REQUEST error; 0 = off.");

    public static final ConfigOption<Duration> PROGRESS_INTERVAL =
            ConfigOptions.key("moestream.progress.interval")
                    .durationType()
                    .defaultValue(Duration.ofSeconds(5))
                    .withDescription("How often the demo and run commands print a one-line progress summary; 0 = never.");

    public static final ConfigOption<Integer> MAX_TOKENS_CAP =
            ConfigOptions.key("moestream.max-tokens-cap")
                    .intType()
                    .defaultValue(512)
                    .withDescription("Largest max_tokens a prompt may ask for; larger values get an INVALID_PARAMS error.");

    public static final ConfigOption<Duration> DOCUMENT_WAIT =
            ConfigOptions.key("moestream.document.wait")
                    .durationType()
                    .defaultValue(Duration.ofSeconds(60))
                    .withDescription(
                            "How long a DOCUMENT prompt waits for its document's last part before a DOCUMENT_INCOMPLETE error.");

    public static final ConfigOption<Integer> PARALLELISM =
            ConfigOptions.key("moestream.parallelism")
                    .intType()
                    .defaultValue(1)
                    .withDescription("Parallelism of the sources, the inference operator and the sinks.");

    public static final ConfigOption<Duration> CHECKPOINT_INTERVAL =
            ConfigOptions.key("moestream.checkpoint.interval")
                    .durationType()
                    .defaultValue(Duration.ofSeconds(2))
                    .withDescription(
                            "Checkpoint interval. Results become visible to read_committed consumers when the checkpoint that covers them completes.");

    public static final ConfigOption<String> TRANSACTIONAL_ID_PREFIX =
            ConfigOptions.key("moestream.kafka.transactional-id-prefix")
                    .stringType()
                    .defaultValue("moestream")
                    .withDescription("Prefix of the Kafka transactional ids of the exactly-once sinks; unique per job.");

    public static final ConfigOption<String> DELIVERY =
            ConfigOptions.key("moestream.sink.delivery")
                    .stringType()
                    .defaultValue("exactly-once")
                    .withDescription(
                            "Guarantee of the Kafka sinks: exactly-once (results in Kafka transactions, visible to read_committed"
                                    + " consumers when the checkpoint that covers them completes) or at-least-once (visible as soon as"
                                    + " written; after a failure the answers since the last checkpoint are written again).");

    public static final ConfigOption<String> TRANSACTION_NAMING =
            ConfigOptions.key("moestream.sink.transaction-naming")
                    .stringType()
                    .defaultValue("pooling")
                    .withDescription(
                            "How the exactly-once sinks name their Kafka transactions: pooling (reuses a few transactional ids,"
                                    + " so a checkpoint starts its transactions without a new producer id from the broker; needs"
                                    + " Kafka 3.0+ and, with ACLs, describe rights on the transactional ids) or incrementing (a new id"
                                    + " per checkpoint, flink-connector-kafka 3's naming).");

    public static final ConfigOption<String> KV_CODEC =
            ConfigOptions.key("moestream.kv.codec")
                    .stringType()
                    .defaultValue("int8")
                    .withDescription(
                            "Codec of full KV blocks of new contexts: f32, f16, int8 or int4 (KIVI-style, optionally /group, default group 32)."
                                    + " int8 stores 0.59x an fp16 cache with unchanged greedy output on the bundled model (docs/kv-cache.md).");

    public static final ConfigOption<Integer> KV_BLOCK_TOKENS =
            ConfigOptions.key("moestream.kv.block-tokens")
                    .intType()
                    .defaultValue(32)
                    .withDescription("Positions per KV block, the unit of compression and of keyed-state writes (one map entry).");

    public static final ConfigOption<Boolean> KV_HEAD_PRUNING =
            ConfigOptions.key("moestream.kv.head-pruning")
                    .booleanType()
                    .defaultValue(false)
                    .withDescription(
                            "Classify attention heads while a document is prefilled; streaming heads keep only sink + window positions.");

    public static final ConfigOption<Double> KV_HEAD_PRUNING_FRACTION =
            ConfigOptions.key("moestream.kv.head-pruning.fraction")
                    .doubleType()
                    .defaultValue(0.5)
                    .withDescription("Head pruning: at most this fraction of the KV heads become streaming.");

    public static final ConfigOption<Double> KV_HEAD_PRUNING_MAX_OUTSIDE_MASS =
            ConfigOptions.key("moestream.kv.head-pruning.max-outside-mass")
                    .doubleType()
                    .defaultValue(0.05)
                    .withDescription(
                            "Head pruning: only heads whose attention mass outside sink + window is at most this may stream (1.0 = no threshold).");

    public static final ConfigOption<Integer> KV_HEAD_PRUNING_SINK =
            ConfigOptions.key("moestream.kv.head-pruning.sink")
                    .intType()
                    .defaultValue(4)
                    .withDescription("Head pruning: first positions (attention sinks) every head keeps.");

    public static final ConfigOption<Integer> KV_HEAD_PRUNING_WINDOW =
            ConfigOptions.key("moestream.kv.head-pruning.window")
                    .intType()
                    .defaultValue(256)
                    .withDescription("Head pruning: most recent positions a streaming head attends to.");

    public static final ConfigOption<Duration> STATE_TTL =
            ConfigOptions.key("moestream.state.ttl")
                    .durationType()
                    .defaultValue(Duration.ofDays(7))
                    .withDescription(
                            "A context (metadata and KV blocks) not read or written for this long expires; 0 = never."
                                    + " Flink cannot add TTL to state restored from a savepoint taken without it: restore such savepoints with 0.");

    public static final ConfigOption<Integer> TENANT_MAX_CONTEXTS =
            ConfigOptions.key("moestream.tenant.max-contexts")
                    .intType()
                    .defaultValue(10_000)
                    .withDescription(
                            "Contexts one tenant may hold per parallel instance of the inference operator (contexts are spread over"
                                    + " instances by key; exact with parallelism 1); a new one beyond gets a CONTEXT_LIMIT error. 0 = no cap.");

    public static final ConfigOption<String> BACKEND =
            ConfigOptions.key("moestream.backend")
                    .stringType()
                    .defaultValue("auto")
                    .withDescription(
                            "Where the inference operator runs its steps: auto (a GPU backend when one is installed and can run on"
                                    + " the slot's GPU, else the CPU engine, with one INFO line saying why), cpu (the CPU engine), cuda"
                                    + " (the CUDA backend on the GPU Flink assigned the slot; the job fails saying why when it cannot"
                                    + " run; needs the moestream-cuda jar on the class path; not yet verified on hardware).");

    public static final ConfigOption<String> CHAT_TEMPLATE_FILE =
            ConfigOptions.key("moestream.chat-template.file")
                    .stringType()
                    .noDefaultValue()
                    .withDescription(
                            "A Jinja2 chat template file that prompts with messages are rendered with, instead of the model's"
                                    + " tokenizer.chat_template. Read on the client that builds the job; the text travels inside the job.");

    public static final ConfigOption<String> STATE_BACKEND =
            ConfigOptions.key("moestream.state.backend")
                    .stringType()
                    .defaultValue("rocksdb")
                    .withDescription(
                            "Keyed-state backend: rocksdb (incremental checkpoints unless execution.checkpointing.incremental is false)"
                                    + " or heap (hashmap). An explicit state.backend.type wins.");

    /**
     * {@code conf} plus the state settings this job defaults to: {@code state.backend.type} from
     * {@link #STATE_BACKEND} (rocksdb) and incremental checkpoints, unless the plain Flink keys are set.
     */
    public static Configuration withStateDefaults(Configuration conf) {
        Configuration c = new Configuration(conf);
        if (!c.contains(StateBackendOptions.STATE_BACKEND)) {
            String backend = c.get(STATE_BACKEND).trim().toLowerCase(java.util.Locale.ROOT);
            switch (backend) {
                case "rocksdb" -> c.set(StateBackendOptions.STATE_BACKEND, "rocksdb");
                case "heap", "hashmap" -> c.set(StateBackendOptions.STATE_BACKEND, "hashmap");
                default -> throw new IllegalArgumentException("moestream.state.backend must be rocksdb or heap, got '"
                        + c.get(STATE_BACKEND) + "'");
            }
        }
        if (!c.contains(CheckpointingOptions.INCREMENTAL_CHECKPOINTS)) {
            c.set(CheckpointingOptions.INCREMENTAL_CHECKPOINTS, true);
        }
        return c;
    }

    /** The sinks' {@link DeliveryGuarantee} from {@link #DELIVERY}. */
    public static DeliveryGuarantee delivery(ReadableConfig conf) {
        return switch (conf.get(DELIVERY).trim().toLowerCase(java.util.Locale.ROOT)) {
            case "exactly-once" -> DeliveryGuarantee.EXACTLY_ONCE;
            case "at-least-once" -> DeliveryGuarantee.AT_LEAST_ONCE;
            default -> throw new IllegalArgumentException(DELIVERY.key() + " must be exactly-once or at-least-once, got '"
                    + conf.get(DELIVERY) + "'");
        };
    }

    /** The exactly-once sinks' {@link TransactionNamingStrategy} from {@link #TRANSACTION_NAMING}. */
    public static TransactionNamingStrategy transactionNaming(ReadableConfig conf) {
        return switch (conf.get(TRANSACTION_NAMING).trim().toLowerCase(java.util.Locale.ROOT)) {
            case "pooling" -> TransactionNamingStrategy.POOLING;
            case "incrementing" -> TransactionNamingStrategy.INCREMENTING;
            default -> throw new IllegalArgumentException(TRANSACTION_NAMING.key() + " must be pooling or incrementing, got '"
                    + conf.get(TRANSACTION_NAMING) + "'");
        };
    }

    /** The operator's context-state settings from the {@code moestream.kv.*}, {@code state.ttl} and {@code tenant.*} options. */
    public static KvStateConfig kvState(ReadableConfig conf) {
        return new KvStateConfig(conf.get(KV_CODEC), conf.get(KV_BLOCK_TOKENS), conf.get(KV_HEAD_PRUNING),
                conf.get(KV_HEAD_PRUNING_FRACTION), conf.get(KV_HEAD_PRUNING_MAX_OUTSIDE_MASS), conf.get(KV_HEAD_PRUNING_SINK),
                conf.get(KV_HEAD_PRUNING_WINDOW), conf.get(STATE_TTL).toMillis(), conf.get(TENANT_MAX_CONTEXTS));
    }

    private JobOptions() {}

    /** The text of {@link #CHAT_TEMPLATE_FILE}, or null when it is unset; fails naming the file when it cannot be read. */
    public static String chatTemplate(ReadableConfig conf) {
        return conf.getOptional(CHAT_TEMPLATE_FILE).map(file -> {
            try {
                return Files.readString(Path.of(file));
            } catch (IOException e) {
                throw new IllegalArgumentException(CHAT_TEMPLATE_FILE.key() + ": cannot read " + file + ": " + e, e);
            }
        }).orElse(null);
    }
}
