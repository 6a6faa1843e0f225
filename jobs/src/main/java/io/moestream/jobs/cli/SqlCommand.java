package io.moestream.jobs.cli;

import io.moestream.jobs.kafka.LocalKafka;
import io.moestream.jobs.kafka.Topics;
import io.moestream.jobs.sql.SqlScript;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Callable;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.CoreOptions;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code moestream sql -f FILE.sql}: runs a Flink SQL script on a MiniCluster in this JVM. */
@Command(
        name = "sql",
        mixinStandardHelpOptions = true,
        description = {
            "Runs a Flink SQL script (statements separated by ';') on a MiniCluster in this JVM.",
            "${bootstrap-servers} in the script is replaced by --bootstrap-servers, or, without it, by the address of an"
                    + " in-process Kafka broker started with the default topics for the script's run.",
            "The 'moestream-avro' format and the 'moestream' model provider are available (docs/sql.md)."
        })
public final class SqlCommand implements Callable<Integer> {

    @Spec CommandSpec spec;

    @Option(names = {"-f", "--file"}, required = true, description = "The SQL script.")
    Path file;

    @Option(names = "--bootstrap-servers", description = "Kafka for ${bootstrap-servers}; default: an in-process broker.")
    String bootstrapServers;

    @Option(names = "--parallelism", description = "Default parallelism (default: ${DEFAULT-VALUE}).", defaultValue = "1")
    int parallelism;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        String script = Files.readString(file);
        LocalKafka kafka = null;
        try {
            String servers = bootstrapServers;
            if (servers == null) {
                kafka = LocalKafka.start(0);
                kafka.createTopics(Topics.ALL);
                servers = kafka.bootstrapServers();
                spec.commandLine().getErr().println("in-process Kafka at bootstrap.servers=" + servers);
            }
            Configuration conf = new Configuration();
            conf.set(CoreOptions.DEFAULT_PARALLELISM, parallelism);
            SqlScript.run(SqlScript.environment(conf),
                    SqlScript.statements(SqlScript.substitute(script, Map.of("bootstrap-servers", servers))),
                    row -> {
                        out.println(row);
                        out.flush();
                    });
            return 0;
        } finally {
            if (kafka != null) {
                kafka.close();
            }
        }
    }
}
