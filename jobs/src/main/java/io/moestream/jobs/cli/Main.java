package io.moestream.jobs.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.util.OptionalInt;
import java.util.Set;

/** The {@code moestream.jar} launcher: one picocli command per subcommand. */
@Command(
        name = "moestream",
        mixinStandardHelpOptions = true,
        versionProvider = VersionProvider.class,
        description = "Mixture-of-Experts inference inside Apache Flink.",
        subcommands = {
            DemoCommand.class,
            RunCommand.class,
            GenerateCommand.class,
            MakeModelCommand.class,
            BenchCommand.class,
            KafkaCommand.class,
            ProduceCommand.class,
            ConsumeCommand.class,
            SqlCommand.class,
            ChatTemplateCommand.class,
            CommandLine.HelpCommand.class
        })
public final class Main implements Runnable {

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    /** Commands that run the engine: started in a child JVM with the Vector API when this one lacks it. */
    private static final Set<String> ENGINE_COMMANDS = Set.of("demo", "run", "generate", "bench");

    public static void main(String[] args) throws InterruptedException {
        if (args.length > 0 && ENGINE_COMMANDS.contains(args[0]) && VectorRelaunch.needed()) {
            OptionalInt code = VectorRelaunch.runInChild(args);
            if (code.isPresent()) {
                System.exit(code.getAsInt());
            }
        }
        VectorRelaunch.exitWithParent();
        System.exit(execute(args));
    }

    /** Runs the command line and returns its exit code (tests call this instead of {@link #main}). */
    public static int execute(String... args) {
        return new CommandLine(new Main()).execute(args);
    }

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }
}
