package io.moestream.benchmarks;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/**
 * CPU time of this JVM (all its threads: with the in-process broker and MiniCluster that is the
 * whole pipeline). Unlike wall time it hardly changes when other processes share the cores, so
 * CPU per generated token compares the two runs on a busy machine.
 */
final class ProcessCpu {
    private static final long NANOS_PER_TICK = 10_000_000L; // Linux USER_HZ = 100

    private ProcessCpu() {}

    static long nanos() {
        if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
            return os.getProcessCpuTime();
        }
        return -1;
    }

    /**
     * CPU time of the JIT compiler threads ({@code /proc/self/task/N/stat}, 10 ms ticks; Linux only,
     * 0 elsewhere). A compiler thread that exits between two readings takes its time with it.
     */
    static long compilerNanos() {
        Path tasks = Path.of("/proc/self/task");
        if (!Files.isDirectory(tasks)) {
            return 0;
        }
        long ticks = 0;
        try (Stream<Path> threads = Files.list(tasks)) {
            for (Path t : (Iterable<Path>) threads::iterator) {
                ticks += compilerTicks(t.resolve("stat"));
            }
        } catch (IOException e) {
            return 0;
        }
        return ticks * NANOS_PER_TICK;
    }

    private static long compilerTicks(Path stat) {
        try {
            String s = Files.readString(stat);
            int open = s.indexOf('(');
            int close = s.lastIndexOf(')');
            String comm = s.substring(open + 1, close);
            if (!comm.startsWith("C1 Compiler") && !comm.startsWith("C2 Compiler")) {
                return 0;
            }
            // after "(comm) ": state is field 3, utime field 14, stime field 15
            String[] f = s.substring(close + 2).split(" ");
            return Long.parseLong(f[11]) + Long.parseLong(f[12]);
        } catch (IOException | RuntimeException e) {
            return 0; // the thread ended
        }
    }
}
