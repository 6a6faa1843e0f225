package io.moestream.operators.sql;

import io.moestream.operators.InferenceConfig;
import io.moestream.operators.KvStateConfig;
import java.util.List;
import java.util.Set;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.catalog.Column;
import org.apache.flink.table.catalog.ResolvedSchema;
import org.apache.flink.table.factories.FactoryUtil;
import org.apache.flink.table.factories.ModelProviderFactory;
import org.apache.flink.table.ml.AsyncPredictRuntimeProvider;
import org.apache.flink.table.ml.ModelProvider;
import org.apache.flink.table.types.logical.LogicalTypeFamily;
import org.apache.flink.table.types.logical.LogicalTypeRoot;

/**
 * The {@code moestream} model provider for {@code CREATE MODEL ... WITH ('provider' = 'moestream')}:
 * the model runs inside the job, and the {@code ML_PREDICT} rows of every subtask of a TaskManager
 * share one engine's continuous-batching steps ({@link MoePredictFunction}). See docs/sql.md.
 */
public final class MoeModelProviderFactory implements ModelProviderFactory {

    public static final String IDENTIFIER = "moestream";

    public static final ConfigOption<String> MODEL_PATH = ConfigOptions.key("model-path").stringType()
            .defaultValue(InferenceConfig.BUNDLED_MODEL).withDescription("GGUF file, or the bundled model.");
    public static final ConfigOption<Integer> MAX_TOKENS = ConfigOptions.key("max-tokens").intType().defaultValue(64);
    public static final ConfigOption<Float> TEMPERATURE = ConfigOptions.key("temperature").floatType().defaultValue(0f);
    public static final ConfigOption<Integer> TOP_K = ConfigOptions.key("top-k").intType().defaultValue(0);
    public static final ConfigOption<Float> TOP_P = ConfigOptions.key("top-p").floatType().defaultValue(1f);
    public static final ConfigOption<Long> SEED = ConfigOptions.key("seed").longType().defaultValue(0L)
            .withDescription("Mixed with a hash of the prompt text: the same row gets the same answer on every try.");
    public static final ConfigOption<List<String>> STOP = ConfigOptions.key("stop").stringType().asList().noDefaultValue();
    public static final ConfigOption<Integer> MAX_SEQUENCES = ConfigOptions.key("max-sequences").intType().defaultValue(32)
            .withDescription("Most rows in one engine step (per TaskManager).");
    public static final ConfigOption<Integer> TOKEN_BUDGET = ConfigOptions.key("token-budget").intType().defaultValue(256);
    public static final ConfigOption<Long> ATTENTION_BUDGET = ConfigOptions.key("step.attention-budget").longType()
            .defaultValue(InferenceConfig.DEFAULT_ATTENTION_BUDGET)
            .withDescription("Most attention work in one engine step (sum over its tokens of the positions each"
                    + " attends to), as the job option moestream.step.attention-budget.");
    public static final ConfigOption<String> KV_CODEC = ConfigOptions.key("kv.codec").stringType()
            .defaultValue(KvStateConfig.DEFAULT_CODEC);
    public static final ConfigOption<Integer> KV_BLOCK_TOKENS = ConfigOptions.key("kv.block-tokens").intType()
            .defaultValue(KvStateConfig.DEFAULT_BLOCK_TOKENS);
    public static final ConfigOption<String> BACKEND = ConfigOptions.key("backend").stringType()
            .defaultValue(InferenceConfig.DEFAULT_BACKEND);
    public static final ConfigOption<String> ERROR_HANDLING = ConfigOptions.key("error-handling").stringType()
            .defaultValue("fail")
            .withDescription("A row that cannot be answered (null or too long prompt): 'fail' fails the job; 'column'"
                    + " answers it with its message in the output column 'error' and nulls elsewhere.");

    public static final ConfigOption<String> RESPONSE_JSON_SCHEMA = ConfigOptions.key("response-format.json-schema")
            .stringType().noDefaultValue()
            .withDescription("Answers are compact JSON valid against this JSON Schema (docs/structured-output.md).");
    public static final ConfigOption<String> RESPONSE_REGEX = ConfigOptions.key("response-format.regex").stringType()
            .noDefaultValue().withDescription("Answers match this regular expression as a whole.");
    public static final ConfigOption<List<String>> RESPONSE_CHOICES = ConfigOptions.key("response-format.choices")
            .stringType().asList().noDefaultValue().withDescription("Answers are exactly one of these (';'-separated).");

    /** Output columns the provider fills, by name. */
    static final Set<String> OUTPUTS = Set.of("text", "finish_reason", "prompt_tokens", "completion_tokens", "error");

    @Override
    public String factoryIdentifier() {
        return IDENTIFIER;
    }

    @Override
    public Set<ConfigOption<?>> requiredOptions() {
        return Set.of();
    }

    @Override
    public Set<ConfigOption<?>> optionalOptions() {
        return Set.of(MODEL_PATH, MAX_TOKENS, TEMPERATURE, TOP_K, TOP_P, SEED, STOP, MAX_SEQUENCES, TOKEN_BUDGET,
                KV_CODEC, KV_BLOCK_TOKENS, BACKEND, ERROR_HANDLING, ATTENTION_BUDGET, RESPONSE_JSON_SCHEMA, RESPONSE_REGEX,
                RESPONSE_CHOICES);
    }

    @Override
    public ModelProvider createModelProvider(Context context) {
        FactoryUtil.ModelProviderFactoryHelper helper = FactoryUtil.createModelProviderFactoryHelper(this, context);
        helper.validate();
        ReadableConfig options = helper.getOptions();
        ResolvedSchema input = context.getCatalogModel().getResolvedInputSchema();
        ResolvedSchema output = context.getCatalogModel().getResolvedOutputSchema();
        checkInput(input);
        String errors = options.get(ERROR_HANDLING);
        if (!errors.equals("fail") && !errors.equals("column")) {
            throw new ValidationException("error-handling must be 'fail' or 'column', got '" + errors + "'");
        }
        checkOutput(output, errors.equals("column"));
        ResponseFormatOption format = responseFormat(options, "model " + context.getObjectIdentifier());
        InferenceConfig engine;
        PredictSettings settings;
        try {
            KvStateConfig kv = KvStateConfig.defaults().withCodec(options.get(KV_CODEC))
                    .withBlockTokens(options.get(KV_BLOCK_TOKENS));
            engine = InferenceConfig.defaults(options.get(MODEL_PATH)).withMaxSequences(options.get(MAX_SEQUENCES))
                    .withTokenBudget(Math.max(options.get(TOKEN_BUDGET), Math.max(2, options.get(MAX_SEQUENCES))))
                    .withAttentionBudget(options.get(ATTENTION_BUDGET))
                    .withKvState(kv).withBackend(options.get(BACKEND));
            settings = new PredictSettings(options.get(MAX_TOKENS), options.get(TEMPERATURE), options.get(TOP_K),
                    options.get(TOP_P), options.get(SEED), options.getOptional(STOP).orElse(List.of()),
                    errors.equals("column"), output.getColumnNames(), format);
        } catch (IllegalArgumentException e) {
            throw new ValidationException("model " + context.getObjectIdentifier() + ": " + e.getMessage(), e);
        }
        return new Provider(engine, settings);
    }

    /**
     * The {@code response-format.*} option of a model (or of one {@code ML_PREDICT} call), compiled
     * here so a schema outside the supported subset fails when the statement is planned, naming the
     * keyword; null without one.
     */
    static ResponseFormatOption responseFormat(ReadableConfig options, String where) {
        List<ResponseFormatOption> set = new java.util.ArrayList<>();
        options.getOptional(RESPONSE_JSON_SCHEMA).ifPresent(s -> set.add(new ResponseFormatOption("json-schema", s, List.of())));
        options.getOptional(RESPONSE_REGEX).ifPresent(r -> set.add(new ResponseFormatOption("regex", r, List.of())));
        options.getOptional(RESPONSE_CHOICES).ifPresent(c -> set.add(new ResponseFormatOption("choices", null, List.copyOf(c))));
        if (set.isEmpty()) {
            return null;
        }
        if (set.size() > 1) {
            throw new ValidationException(where + ": set one of 'response-format.json-schema',"
                    + " 'response-format.regex' or 'response-format.choices', not " + set.size());
        }
        try {
            set.get(0).grammar();
        } catch (IllegalArgumentException e) {
            throw new ValidationException(where + ": 'response-format." + set.get(0).kind()
                    + "' cannot be used: " + e.getMessage(), e);
        }
        return set.get(0);
    }

    private static void checkInput(ResolvedSchema input) {
        List<Column> columns = input.getColumns();
        if (columns.size() != 1 || !columns.get(0).getDataType().getLogicalType().is(LogicalTypeFamily.CHARACTER_STRING)) {
            throw new ValidationException("the moestream provider takes one STRING input column (the prompt), got "
                    + input.getColumns());
        }
    }

    private static void checkOutput(ResolvedSchema output, boolean errorColumn) {
        for (Column c : output.getColumns()) {
            if (!OUTPUTS.contains(c.getName())) {
                throw new ValidationException("output column '" + c.getName() + "' is not one the moestream provider fills: "
                        + OUTPUTS);
            }
            boolean count = c.getName().endsWith("_tokens");
            boolean ok = count ? c.getDataType().getLogicalType().is(LogicalTypeRoot.INTEGER)
                    : c.getDataType().getLogicalType().is(LogicalTypeFamily.CHARACTER_STRING);
            if (!ok) {
                throw new ValidationException("output column '" + c.getName() + "' must be " + (count ? "INT" : "STRING"));
            }
        }
        if (errorColumn && !output.getColumnNames().contains("error")) {
            throw new ValidationException("error-handling 'column' needs an output column 'error STRING'");
        }
    }

    /**
     * The async provider; copies share nothing mutable. A {@code response-format.*} key in the
     * {@code ML_PREDICT} call's config map (Flink hands the map over as the runtime config) replaces
     * the model's for that call.
     */
    private record Provider(InferenceConfig engine, PredictSettings settings) implements AsyncPredictRuntimeProvider {
        @Override
        public MoePredictFunction createAsyncPredictFunction(ModelProvider.Context context) {
            ResponseFormatOption call = responseFormat(context.runtimeConfig(), "ML_PREDICT config");
            return new MoePredictFunction(engine, call == null ? settings : settings.withFormat(call));
        }

        @Override
        public ModelProvider copy() {
            return new Provider(engine, settings);
        }
    }
}
