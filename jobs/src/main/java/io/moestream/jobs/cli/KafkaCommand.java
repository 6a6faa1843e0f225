package io.moestream.jobs.cli;

import io.moestream.jobs.kafka.LocalKafka;
import io.moestream.jobs.kafka.Topics;
import java.io.PrintWriter;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code moestream kafka}: a local single-node Kafka in the foreground until Ctrl-C. */
@Command(
        name = "kafka",
        mixinStandardHelpOptions = true,
        description = {
            "Runs a single-node Kafka (KRaft, in this JVM) on 127.0.0.1 with the default topics, until interrupted.",
            "Prints bootstrap.servers=127.0.0.1:PORT once it accepts clients. Data lives in a temporary directory"
                    + " that is deleted on exit."
        })
public final class KafkaCommand implements Callable<Integer> {

    @Spec CommandSpec spec;

    @Option(names = "--port", description = "Client port on 127.0.0.1, 0 for any free port (default: ${DEFAULT-VALUE}).",
            defaultValue = "9092")
    int port;

    @Option(names = "--partitions", description = "Partitions of each default topic (default: ${DEFAULT-VALUE}).",
            defaultValue = "1")
    int partitions;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        LocalKafka kafka = LocalKafka.start(port, partitions, Map.of());
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                kafka.close();
            } finally {
                stopped.countDown();
            }
        }, "moestream-kafka-shutdown"));
        kafka.createTopics(Topics.ALL);
        err.println("topics: " + String.join(", ", Topics.ALL) + " (" + partitions + " partition"
                + (partitions == 1 ? "" : "s") + " each); Ctrl-C stops the broker and deletes its data");
        err.flush();
        out.println("bootstrap.servers=" + kafka.bootstrapServers());
        out.flush();
        stopped.await();
        return 0;
    }
}
