package io.moestream.benchmarks;

import java.lang.management.CompilationMXBean;
import java.lang.management.ManagementFactory;

/**
 * Warm-up until the JIT is quiet: rounds of warm-up prompts run until the JIT compilers spent less
 * than {@link #QUIET} of a round's wall time compiling (at least {@link #MIN_ROUNDS}, at most
 * {@link #MAX_ROUNDS}). Both runs of the bench use the same rule, so each measures compiled code:
 * the pipeline has far more code than the engine (broker, Kafka clients, Flink, RocksDB, Avro), and
 * a fixed warm-up that compiles the engine leaves the pipeline compiling in its measured window.
 */
final class WarmUp {

    static final double QUIET = 0.05;
    static final int MIN_ROUNDS = 2;
    static final int MAX_ROUNDS = 40;

    /** One warm-up round; {@code round} numbers the round so its request ids are new. */
    interface Round {
        void run(int round) throws Exception;
    }

    /** How the warm-up ended: rounds run and the JIT's share of the last round's wall time. */
    record Result(int rounds, double lastJitShare, double seconds) {}

    static Result untilQuiet(String what, Round round) throws Exception {
        CompilationMXBean jit = ManagementFactory.getCompilationMXBean();
        long begin = System.nanoTime();
        for (int r = 0; ; r++) {
            long compiledMs = jit.getTotalCompilationTime();
            long started = System.nanoTime();
            round.run(r);
            double wallMs = (System.nanoTime() - started) / 1e6;
            double share = (jit.getTotalCompilationTime() - compiledMs) / Math.max(1.0, wallMs);
            System.err.printf("%s warm-up round %d: %.0f ms, JIT %.0f %% of it%n", what, r + 1, wallMs, 100 * share);
            if ((r + 1 >= MIN_ROUNDS && share < QUIET) || r + 1 >= MAX_ROUNDS) {
                return new Result(r + 1, share, (System.nanoTime() - begin) / 1e9);
            }
        }
    }

    private WarmUp() {}
}
