package io.moestream.jobs.cli;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.Locale;
import java.util.OptionalInt;

/**
 * A main class run by {@link VectorRelaunchProcessITCase} the way {@link Main} runs a command: it
 * relaunches itself when the module is missing, then reports where it runs and does what its first
 * argument says ({@code echo}: stdin upper-cased to stdout; {@code exit N}; {@code wait}: until
 * terminated, saying so on stderr from a shutdown hook).
 */
public final class RelaunchProbe {
    private RelaunchProbe() {}

    public static void main(String[] args) throws Exception {
        if (VectorRelaunch.needed()) {
            OptionalInt code = VectorRelaunch.runInChild(args);
            if (code.isPresent()) {
                System.exit(code.getAsInt());
            }
        }
        VectorRelaunch.exitWithParent();
        if (args[0].equals("wait")) {
            Runtime.getRuntime().addShutdownHook(new Thread(() -> System.err.println("child stopping")));
        }
        System.out.println("vector=" + ModuleLayer.boot().findModule(VectorRelaunch.MODULE).isPresent()
                + " pid=" + ProcessHandle.current().pid());
        System.out.flush();
        switch (args[0]) {
            case "echo" -> {
                BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
                for (String line; (line = in.readLine()) != null; ) {
                    System.out.println(line.toUpperCase(Locale.ROOT));
                }
                System.err.println("echo done");
            }
            case "exit" -> System.exit(Integer.parseInt(args[1]));
            case "wait" -> Thread.sleep(Long.MAX_VALUE);
            default -> throw new IllegalArgumentException(args[0]);
        }
    }
}
