package io.moestream.jobs.k8s;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.networknt.schema.Schema;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SpecificationVersion;
import io.moestream.jobs.JobOptions;
import java.io.InputStream;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.CoreOptions;
import org.apache.flink.configuration.ExternalResourceOptions;
import org.apache.flink.configuration.FallbackKey;
import org.apache.flink.configuration.HighAvailabilityOptions;
import org.apache.flink.configuration.JobManagerOptions;
import org.apache.flink.configuration.PipelineOptions;
import org.apache.flink.configuration.RestartStrategyOptions;
import org.apache.flink.configuration.SecurityOptions;
import org.apache.flink.configuration.StateBackendOptions;
import org.apache.flink.configuration.TaskManagerOptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The {@code FlinkDeployment}s in {@code infra/k8s/} against the Flink Kubernetes Operator's CRD
 * schema (test resource {@code flink-kubernetes-operator/}, with unknown fields refused as
 * {@code kubectl apply --validate=strict} refuses them), and against what the CRD cannot know: the
 * Flink keys are Flink 2.2 options, the jar and image match the Dockerfile and the pom, the entry
 * class and its {@code --moestream.*} arguments are the job's real options, the model lies on a
 * volume every TaskManager mounts, state goes to durable storage, GPUs are requested consistently.
 */
class FlinkDeploymentManifestsTest {

    private static final Path K8S = Path.of("../infra/k8s");
    private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());
    private static final String MAIN_CONTAINER = "flink-main-container";
    private static final String GPU_DRIVER_FACTORY = "org.apache.flink.externalresource.gpu.GPUDriverFactory";
    private static final List<Class<?>> FLINK_OPTION_CLASSES = List.of(CheckpointingOptions.class,
            StateBackendOptions.class, HighAvailabilityOptions.class, CoreOptions.class, TaskManagerOptions.class,
            JobManagerOptions.class, ExternalResourceOptions.class, PipelineOptions.class, RestartStrategyOptions.class,
            SecurityOptions.class);

    private static Schema crd;

    @BeforeAll
    static void loadCrd() throws Exception {
        JsonNode definition;
        try (InputStream in = FlinkDeploymentManifestsTest.class.getResourceAsStream(
                "/flink-kubernetes-operator/flinkdeployments.flink.apache.org-v1.yml")) {
            definition = YAML.readTree(in);
        }
        JsonNode version = null;
        for (JsonNode v : definition.path("spec").path("versions")) {
            if (v.path("name").asText().equals("v1beta1")) {
                version = v;
            }
        }
        ObjectNode schema = (ObjectNode) version.path("schema").path("openAPIV3Schema").deepCopy();
        ObjectNode root = (ObjectNode) schema.get("properties");
        root.putObject("apiVersion").put("type", "string");
        root.putObject("kind").put("type", "string");
        root.putObject("metadata").put("type", "object").put("x-kubernetes-preserve-unknown-fields", true);
        strict(schema);
        crd = SchemaRegistry.withDefaultDialect(SpecificationVersion.DRAFT_4).getSchema(schema);
    }

    @Test
    void theCpuAndGpuDeploymentsValidateAgainstTheOperatorsCrdAndTheJob() throws Exception {
        for (String file : List.of("moestream-cpu.yaml", "moestream-gpu.yaml")) {
            JsonNode deployment = YAML.readTree(K8S.resolve(file).toFile());
            assertThat(problems(deployment)).as(file).isEmpty();
        }
        JsonNode gpu = YAML.readTree(K8S.resolve("moestream-gpu.yaml").toFile());
        assertThat(gpuLimit(gpu.path("spec"))).isEqualTo(1);
        assertThat(YAML.readTree(K8S.resolve("moestream-cpu.yaml").toFile()).path("spec").path("flinkConfiguration")
                .has("external-resources")).isFalse();
    }

    @Test
    void aMisspeltFieldAWrongTypeOrAnUnknownJobOptionIsReported() throws Exception {
        JsonNode good = YAML.readTree(K8S.resolve("moestream-gpu.yaml").toFile());

        ObjectNode misspelt = good.deepCopy();
        ((ObjectNode) mainContainer(misspelt.path("spec").path("taskManager"))).set("resorces",
                mainContainer(good.path("spec").path("taskManager")).get("resources"));
        assertThat(problems(misspelt)).anySatisfy(p -> assertThat(p).startsWith("CRD: ").contains("resorces"));

        ObjectNode wrongType = good.deepCopy();
        ((ObjectNode) wrongType.path("spec").path("job")).put("parallelism", "two");
        assertThat(problems(wrongType)).anySatisfy(p -> assertThat(p).startsWith("CRD: ").contains("parallelism"));

        ObjectNode badMode = good.deepCopy();
        ((ObjectNode) badMode.path("spec").path("job")).put("upgradeMode", "savepoints");
        assertThat(problems(badMode)).anySatisfy(p -> assertThat(p).startsWith("CRD: ").contains("upgradeMode"));

        ObjectNode unknownArg = good.deepCopy();
        ((ArrayNode) unknownArg.path("spec").path("job").path("args")).set(2, "--moestream.modle.path");
        assertThat(problems(unknownArg)).anySatisfy(p -> assertThat(p).contains("moestream.modle.path"));

        ObjectNode badValue = good.deepCopy();
        ((ArrayNode) badValue.path("spec").path("job").path("args")).add("--moestream.checkpoint.interval").add("often");
        assertThat(problems(badValue)).anySatisfy(p -> assertThat(p).contains("moestream.checkpoint.interval"));

        ObjectNode unknownKey = good.deepCopy();
        ((ObjectNode) unknownKey.path("spec").path("flinkConfiguration")).put("state.backend.typ", "rocksdb");
        assertThat(problems(unknownKey)).anySatisfy(p -> assertThat(p).contains("state.backend.typ"));

        ObjectNode moreGpus = good.deepCopy();
        ((ObjectNode) mainContainer(moreGpus.path("spec").path("taskManager")).path("resources").path("limits"))
                .put("nvidia.com/gpu", 2);
        assertThat(problems(moreGpus)).anySatisfy(p -> assertThat(p).contains("external-resource.gpu.amount"));

        ObjectNode noModel = good.deepCopy();
        ((ArrayNode) noModel.path("spec").path("job").path("args")).set(3, "/data/moe.gguf");
        assertThat(problems(noModel)).anySatisfy(p -> assertThat(p).contains("/data/moe.gguf"));

        ObjectNode ephemeral = good.deepCopy();
        ((ObjectNode) ephemeral.path("spec").path("flinkConfiguration")).put("execution.checkpointing.dir",
                "file:///tmp/checkpoints");
        assertThat(problems(ephemeral)).anySatisfy(p -> assertThat(p).contains("file:///tmp/checkpoints"));
    }

    /** Everything wrong with {@code deployment}: CRD schema errors, then the checks the CRD cannot make. */
    private static List<String> problems(JsonNode deployment) throws Exception {
        List<String> problems = new ArrayList<>();
        crd.validate(deployment).forEach(e -> problems.add("CRD: " + e));
        JsonNode spec = deployment.path("spec");
        checkImageAndJar(spec, problems);
        Map<String, String> flink = new HashMap<>();
        spec.path("flinkConfiguration").fields().forEachRemaining(f -> flink.put(f.getKey(), f.getValue().asText()));
        flink.keySet().stream().filter(k -> !isFlinkOption(k))
                .forEach(k -> problems.add("flinkConfiguration key " + k + " is not a Flink " + flinkVersion() + " option"));
        Map<String, String> args = checkArgs(spec.path("job"), problems);
        checkState(spec, flink, problems);
        checkModel(spec, args, problems);
        checkGpu(spec, flink, args, problems);
        if (!flink.getOrDefault("env.java.opts.taskmanager", "").contains("--add-modules jdk.incubator.vector")) {
            problems.add("env.java.opts.taskmanager lacks --add-modules jdk.incubator.vector");
        }
        return problems;
    }

    private static void checkImageAndJar(JsonNode spec, List<String> problems) throws Exception {
        String dockerfile = Files.readString(K8S.resolve("Dockerfile"));
        String version = flinkVersion();
        if (!dockerfile.contains("\nFROM flink:" + version + "-java17\n")) {
            problems.add("Dockerfile is not FROM flink:" + version + "-java17");
        }
        String[] v = version.split("\\.");
        if (!spec.path("flinkVersion").asText().equals("v" + v[0] + "_" + v[1])) {
            problems.add("flinkVersion " + spec.path("flinkVersion").asText() + " is not the pom's Flink " + version);
        }
        Matcher copy = Pattern.compile("\nCOPY (?:--\\S+ )*jobs/target/moestream\\.jar (\\S+)\n").matcher(dockerfile);
        String jar = spec.path("job").path("jarURI").asText();
        if (!copy.find() || !jar.equals("local://" + copy.group(1))) {
            problems.add("jarURI " + jar + " is not where the Dockerfile copies jobs/target/moestream.jar");
        }
        String entry = spec.path("job").path("entryClass").asText();
        try {
            Method main = Class.forName(entry).getMethod("main", String[].class);
            if (!Modifier.isStatic(main.getModifiers())) {
                problems.add("entryClass " + entry + " has no static main");
            }
        } catch (ClassNotFoundException | NoSuchMethodException e) {
            problems.add("entryClass " + entry + " is not a class of the job jar with a main method");
        }
    }

    /** The job's {@code --key value} arguments, each checked against {@link JobOptions} and its type. */
    private static Map<String, String> checkArgs(JsonNode job, List<String> problems) throws Exception {
        Map<String, ConfigOption<?>> options = new HashMap<>();
        for (Field f : JobOptions.class.getFields()) {
            if (f.getType() == ConfigOption.class) {
                ConfigOption<?> o = (ConfigOption<?>) f.get(null);
                options.put(o.key(), o);
            }
        }
        Map<String, String> args = new HashMap<>();
        JsonNode list = job.path("args");
        for (int i = 0; i < list.size(); i += 2) {
            String key = list.get(i).asText().replaceFirst("^--", "");
            String value = i + 1 < list.size() ? list.get(i + 1).asText() : "";
            ConfigOption<?> option = options.get(key);
            if (option == null) {
                problems.add("job argument --" + key + " is not an option of the job (JobOptions)");
                continue;
            }
            Configuration c = new Configuration();
            c.setString(key, value);
            try {
                c.get(option);
            } catch (IllegalArgumentException e) {
                problems.add("job argument --" + key + " " + value + ": " + e.getMessage());
            }
            args.put(key, value);
        }
        return args;
    }

    /** RocksDB, checkpoints and savepoints on durable storage (S3 or a mounted volume claim), savepoint upgrades. */
    private static void checkState(JsonNode spec, Map<String, String> flink, List<String> problems) {
        if (!"rocksdb".equals(flink.get("state.backend.type"))) {
            problems.add("state.backend.type is not rocksdb");
        }
        if (!"savepoint".equals(spec.path("job").path("upgradeMode").asText())) {
            problems.add("upgradeMode is not savepoint");
        }
        for (String key : List.of("execution.checkpointing.dir", "execution.checkpointing.savepoint-dir")) {
            String dir = flink.getOrDefault(key, "");
            boolean durable = dir.startsWith("s3://")
                    || dir.startsWith("file://") && claimMountedAt(spec.path("podTemplate"), dir.substring("file://".length()));
            if (!durable) {
                problems.add(key + " " + dir + " is neither s3:// nor a volume claim mounted on the JobManager and"
                        + " every TaskManager");
            }
        }
    }

    /** The model path lies on a volume claim every TaskManager mounts, and that claim is in storage.yaml. */
    private static void checkModel(JsonNode spec, Map<String, String> args, List<String> problems) throws Exception {
        String model = args.get("moestream.model.path");
        if (model == null) {
            problems.add("no --moestream.model.path (the bundled model only)");
            return;
        }
        if (!claimMountedAt(spec.path("taskManager").path("podTemplate"), model)
                && !claimMountedAt(spec.path("podTemplate"), model)) {
            problems.add("model " + model + " is not on a volume claim mounted by every TaskManager");
        }
    }

    private static void checkGpu(JsonNode spec, Map<String, String> flink, Map<String, String> args, List<String> problems) {
        int limit = gpuLimit(spec);
        String resources = flink.getOrDefault("external-resources", "");
        if (limit == 0) {
            if (!resources.isEmpty()) {
                problems.add("external-resources set without an nvidia.com/gpu limit");
            }
            return;
        }
        if (!List.of(resources.split(";")).contains("gpu")) {
            problems.add("nvidia.com/gpu limit without 'gpu' in external-resources");
        }
        expect(flink, ExternalResourceOptions.getAmountConfigOptionForResource("gpu"), Integer.toString(limit), problems);
        expect(flink, ExternalResourceOptions.getExternalResourceDriverFactoryConfigOptionForResource("gpu"),
                GPU_DRIVER_FACTORY, problems);
        expect(flink, ExternalResourceOptions.getSystemConfigKeyConfigOptionForResource("gpu", "kubernetes.config-key"),
                "nvidia.com/gpu", problems);
        expect(flink, TaskManagerOptions.NUM_TASK_SLOTS.key(), Integer.toString(limit), problems);
        if ("cpu".equals(args.get("moestream.backend"))) {
            problems.add("a GPU deployment with --moestream.backend cpu");
        }
    }

    private static void expect(Map<String, String> flink, String key, String value, List<String> problems) {
        if (!value.equals(flink.get(key))) {
            problems.add(key + " is " + flink.get(key) + ", expected " + value);
        }
    }

    /** The TaskManager main container's nvidia.com/gpu limit, 0 without one. */
    private static int gpuLimit(JsonNode spec) {
        return mainContainer(spec.path("taskManager")).path("resources").path("limits").path("nvidia.com/gpu").asInt(0);
    }

    private static JsonNode mainContainer(JsonNode component) {
        for (JsonNode c : component.path("podTemplate").path("spec").path("containers")) {
            if (c.path("name").asText().equals(MAIN_CONTAINER)) {
                return c;
            }
        }
        return YAML.createObjectNode();
    }

    /** Whether the pod template's main container mounts, at a parent of {@code path}, a volume that is a claim of storage.yaml. */
    private static boolean claimMountedAt(JsonNode podTemplate, String path) {
        JsonNode main = null;
        for (JsonNode c : podTemplate.path("spec").path("containers")) {
            if (c.path("name").asText().equals(MAIN_CONTAINER)) {
                main = c;
            }
        }
        if (main == null) {
            return false;
        }
        for (JsonNode mount : main.path("volumeMounts")) {
            String at = mount.path("mountPath").asText().replaceFirst("/$", "") + "/";
            if (!path.startsWith(at)) {
                continue;
            }
            for (JsonNode volume : podTemplate.path("spec").path("volumes")) {
                String claim = volume.path("persistentVolumeClaim").path("claimName").asText(null);
                if (volume.path("name").asText().equals(mount.path("name").asText()) && claims().contains(claim)) {
                    return true;
                }
            }
        }
        return false;
    }

    /** The PersistentVolumeClaims storage.yaml creates. */
    private static List<String> claims() {
        List<String> names = new ArrayList<>();
        try {
            for (JsonNode doc : YAML.readValues(YAML.getFactory().createParser(K8S.resolve("storage.yaml").toFile()),
                    JsonNode.class).readAll()) {
                if (doc.path("kind").asText().equals("PersistentVolumeClaim")) {
                    names.add(doc.path("metadata").path("name").asText());
                }
            }
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        return names;
    }

    /** A key of Flink's option classes (or one of their deprecated keys), or {@code external-resource.gpu.*}. */
    private static boolean isFlinkOption(String key) {
        if (key.equals(ExternalResourceOptions.getAmountConfigOptionForResource("gpu"))
                || key.equals(ExternalResourceOptions.getExternalResourceDriverFactoryConfigOptionForResource("gpu"))
                || key.startsWith(ExternalResourceOptions.getExternalResourceParamConfigPrefixForResource("gpu"))
                || key.equals(ExternalResourceOptions.getSystemConfigKeyConfigOptionForResource("gpu", "kubernetes.config-key"))) {
            return true;
        }
        for (Class<?> c : FLINK_OPTION_CLASSES) {
            for (Field f : c.getFields()) {
                if (f.getType() != ConfigOption.class || !Modifier.isStatic(f.getModifiers())) {
                    continue;
                }
                try {
                    ConfigOption<?> o = (ConfigOption<?>) f.get(null);
                    if (o.key().equals(key)) {
                        return true;
                    }
                    for (FallbackKey k : o.fallbackKeys()) {
                        if (k.getKey().equals(key)) {
                            return true;
                        }
                    }
                } catch (IllegalAccessException e) {
                    throw new IllegalStateException(e);
                }
            }
        }
        return false;
    }

    /** The root pom's {@code flink.version}. */
    private static String flinkVersion() {
        try {
            Matcher m = Pattern.compile("<flink\\.version>([^<]+)</flink\\.version>").matcher(Files.readString(Path.of("../pom.xml")));
            if (!m.find()) {
                throw new IllegalStateException("no flink.version in ../pom.xml");
            }
            return m.group(1);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /**
     * Refuses unknown fields as the API server's strict field validation does: every object schema
     * with {@code properties} gets {@code additionalProperties: false}, unless it keeps unknown
     * fields ({@code x-kubernetes-preserve-unknown-fields}) or says otherwise.
     */
    private static void strict(JsonNode schema) {
        if (!(schema instanceof ObjectNode node)) {
            return;
        }
        if (node.has("properties") && !node.has("additionalProperties")
                && !node.path("x-kubernetes-preserve-unknown-fields").asBoolean(false)) {
            node.put("additionalProperties", false);
        }
        node.path("properties").forEach(FlinkDeploymentManifestsTest::strict);
        strict(node.get("items"));
        strict(node.get("additionalProperties"));
        for (String k : List.of("anyOf", "allOf", "oneOf")) {
            node.path(k).forEach(FlinkDeploymentManifestsTest::strict);
        }
    }
}
