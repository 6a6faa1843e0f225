package io.moestream.jobs.cli;

import java.io.IOException;
import java.lang.module.ModuleFinder;
import java.nio.charset.Charset;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * Runs the launcher's engine commands with the Vector API kernels without the user adding
 * {@code --add-modules jdk.incubator.vector}: when the module is in the runtime image but not in the
 * boot layer, the command runs in a child JVM started with the same command line plus that flag.
 *
 * <p>A jar manifest cannot add modules in Java 17, hence the child. The child inherits stdin, stdout
 * and stderr (the same file descriptors, so nothing is copied or buffered in between) and the
 * environment; the parent waits and exits with the child's exit code ({@code 128 + signal} when the
 * child died of a signal). Ctrl-C reaches both (one process group); a SIGTERM or SIGINT to the parent
 * alone is forwarded to the child as SIGTERM, and the parent exits once the child has finished its
 * own shutdown. If the parent dies without that (SIGKILL), the child halts at once: no orphan keeps
 * running a job.
 *
 * <p>{@code -Dmoestream.launcher.relaunch=false} runs everything in the first JVM (with the scalar
 * Java kernels unless the module was added by hand).
 */
final class VectorRelaunch {

    static final String MODULE = "jdk.incubator.vector";
    /** Set on the child: the parent's pid. */
    static final String PARENT_PROPERTY = "moestream.launcher.parent";
    /** {@code false} keeps every command in the first JVM. */
    static final String SWITCH_PROPERTY = "moestream.launcher.relaunch";

    private static final long PARENT_POLL_MILLIS = 200;

    private VectorRelaunch() {}

    /** Whether this JVM should hand the command to a child: the module exists but was not added, and this is no child. */
    static boolean needed() {
        return ModuleLayer.boot().findModule(MODULE).isEmpty()
                && ModuleFinder.ofSystem().find(MODULE).isPresent()
                && System.getProperty(PARENT_PROPERTY) == null
                && !"false".equalsIgnoreCase(System.getProperty(SWITCH_PROPERTY));
    }

    /**
     * Runs {@code mainArgs} in a child JVM with the module added, waits for it and returns its exit
     * code; empty when this JVM's command line cannot be read back (the caller then runs the command
     * itself).
     */
    static OptionalInt runInChild(String[] mainArgs) throws InterruptedException {
        Optional<List<String>> command = ownArguments().flatMap(a -> childCommand(
                ProcessHandle.current().info().command().orElse(System.getProperty("java.home") + "/bin/java"),
                a, Arrays.asList(mainArgs), ProcessHandle.current().pid()));
        if (command.isEmpty()) {
            return OptionalInt.empty();
        }
        Process child;
        try {
            child = new ProcessBuilder(command.get()).inheritIO().start();
        } catch (IOException e) {
            System.err.println("cannot start a JVM with --add-modules " + MODULE + " (" + e.getMessage()
                    + "); running with the scalar Java kernels");
            return OptionalInt.empty();
        }
        Runtime.getRuntime().addShutdownHook(new Thread(() -> stopWithParent(child), "moestream-relaunch-stop"));
        return OptionalInt.of(child.waitFor());
    }

    /**
     * The child's command line: the same executable and arguments (JVM options, {@code -jar} or
     * {@code -cp} and main class, the command's arguments), with the module and the parent's pid added
     * in front. Empty when {@code jvmArgv} does not end with {@code mainArgs}: the command line read
     * back is not the one this JVM runs.
     */
    static Optional<List<String>> childCommand(String java, List<String> jvmArgv, List<String> mainArgs, long parentPid) {
        int jvmPart = jvmArgv.size() - mainArgs.size();
        if (jvmPart < 1 || !jvmArgv.subList(jvmPart, jvmArgv.size()).equals(mainArgs)) {
            return Optional.empty();
        }
        List<String> command = new ArrayList<>();
        command.add(java);
        command.add("--add-modules=" + MODULE);
        command.add("-D" + PARENT_PROPERTY + "=" + parentPid);
        command.addAll(jvmArgv);
        return Optional.of(command);
    }

    /**
     * This JVM's arguments after the executable: from {@code /proc/self/cmdline} where there is one
     * ({@link ProcessHandle.Info#arguments()} gives nothing past 4 KiB of command line, e.g. a long
     * class path), else from {@link ProcessHandle.Info#arguments()}.
     */
    private static Optional<List<String>> ownArguments() {
        Path cmdline = Path.of("/proc/self/cmdline");
        if (Files.isReadable(cmdline)) {
            try {
                String all = new String(Files.readAllBytes(cmdline), Charset.forName(
                        System.getProperty("sun.jnu.encoding", Charset.defaultCharset().name())));
                List<String> argv = Arrays.asList(all.split("\0", -1));
                // NUL-terminated: the split ends with an empty string
                return argv.size() < 2 ? Optional.empty() : Optional.of(argv.subList(1, argv.size() - 1));
            } catch (IOException | RuntimeException e) {
                return Optional.empty();
            }
        }
        return ProcessHandle.current().info().arguments().map(Arrays::asList);
    }

    /** In a child: halts as soon as the launching parent is gone (a parent that is shutting down waits for the child). */
    static void exitWithParent() {
        String parent = System.getProperty(PARENT_PROPERTY);
        if (parent == null) {
            return;
        }
        Optional<ProcessHandle> handle = ProcessHandle.current().parent().filter(p -> String.valueOf(p.pid()).equals(parent));
        if (handle.isEmpty()) {
            Runtime.getRuntime().halt(1); // already reparented: the launcher died before we got here
        }
        Thread watch = new Thread(() -> {
            try {
                while (handle.get().isAlive()) {
                    Thread.sleep(PARENT_POLL_MILLIS);
                }
            } catch (InterruptedException e) {
                return;
            }
            Runtime.getRuntime().halt(1);
        }, "moestream-parent-watch");
        watch.setDaemon(true);
        watch.start();
    }

    /** Parent's shutdown hook: forwards the termination to a running child, waits for it, exits with its code. */
    private static void stopWithParent(Process child) {
        if (!child.isAlive()) {
            return;
        }
        child.destroy(); // SIGTERM: the child's shutdown hooks run (run cancels its job)
        try {
            Runtime.getRuntime().halt(child.waitFor());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
