package io.moestream.benchmarks;

import java.lang.management.ManagementFactory;

/**
 * CPU time of this JVM (all its threads: with the in-process broker and MiniCluster that is the
 * whole pipeline). Unlike wall time it hardly changes when other processes share the cores, so
 * CPU per generated token compares the two runs on a busy machine.
 */
final class ProcessCpu {
    private ProcessCpu() {}

    static long nanos() {
        if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
            return os.getProcessCpuTime();
        }
        return -1;
    }
}
