package io.moestream.cuda;

import io.moestream.runtime.model.Model;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/**
 * The first step of {@code device-check.sh}, run with the kit's Java and class path before any GPU
 * test: every oracle model it will use loads (in-tree {@code oracle/} and the kit's block-type
 * models), and the CUDA driver can use the device. Exit status 0 when the GPU checks can run, 2 when
 * a model is missing or unreadable, 3 when the driver or device cannot be used (the reason is printed).
 *
 * <p>usage: {@code DeviceKitPreflight ORACLE_DIR TYPES_DIR DEVICE}
 */
public final class DeviceKitPreflight {

    static final int OK = 0;
    static final int BAD_MODELS = 2;
    static final int NO_DEVICE = 3;

    private DeviceKitPreflight() {}

    public static void main(String[] args) {
        if (args.length != 3) {
            System.err.println("usage: DeviceKitPreflight ORACLE_DIR TYPES_DIR DEVICE");
            System.exit(BAD_MODELS);
        }
        System.exit(check(Path.of(args[0]), Path.of(args[1]), Integer.parseInt(args[2]), System.out));
    }

    /** Prints what it finds; returns the exit status. The in-tree oracle must have models, the block-type directory may be empty. */
    static int check(Path oracle, Path types, int device, PrintStream out) {
        out.println("java " + Runtime.version() + " (" + System.getProperty("java.home") + ")");
        int oracleModels = loadAll("oracle models", oracle, out);
        int typeModels = loadAll("block-type models", types, out);
        if (oracleModels <= 0 || typeModels < 0) {
            out.println("oracle models missing or unreadable in " + oracle.toAbsolutePath() + (typeModels < 0 ? " / " + types.toAbsolutePath() : ""));
            return BAD_MODELS;
        }
        if (typeModels == 0) {
            out.println("warning: no block-type models in " + types.toAbsolutePath() + ": their GPU tests are skipped");
        }
        String reason = new CudaBackendProvider().unavailableReason(device);
        if (reason != null) {
            out.println("CUDA device " + device + " cannot be used: " + reason);
            return NO_DEVICE;
        }
        out.println("CUDA device " + device + " usable");
        return OK;
    }

    /** Loads every .gguf of the directory; returns how many, or -1 when one fails to load. 0 when the directory is missing. */
    static int loadAll(String what, Path dir, PrintStream out) {
        if (!Files.isDirectory(dir)) {
            out.println(what + ": no directory " + dir.toAbsolutePath());
            return 0;
        }
        List<Path> files;
        try (Stream<Path> s = Files.list(dir)) {
            files = s.filter(f -> f.getFileName().toString().endsWith(".gguf")).sorted().toList();
        } catch (IOException e) {
            out.println(what + ": cannot list " + dir.toAbsolutePath() + ": " + e.getMessage());
            return -1;
        }
        out.println(what + " in " + dir.toAbsolutePath() + ":");
        int failed = 0;
        for (Path f : files) {
            try (Model m = Model.load(f)) {
                out.printf("  %-32s %,11d bytes  %s%n", f.getFileName(), Files.size(f), m.config().architecture());
            } catch (IOException | RuntimeException e) {
                out.printf("  %-32s FAILED: %s%n", f.getFileName(), e.getMessage());
                failed++;
            }
        }
        return failed > 0 ? -1 : files.size();
    }
}
