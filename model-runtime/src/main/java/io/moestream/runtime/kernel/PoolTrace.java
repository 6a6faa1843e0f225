package io.moestream.runtime.kernel;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The timeline of a {@link MatmulPool}'s jobs, for benchmarks: per job the caller's start, the end
 * of its own tasks and the close, the tasks it ran, and when the workers joined and left and how
 * many tasks they ran. On when system property {@code moestream.pool.trace} names a file; the
 * last {@link #CAPACITY} jobs are written there as CSV at exit ({@code benchmarks/pool-timeline.py}
 * reads it). Off, {@link #ENABLED} is a constant false and the pool's calls compile away.
 */
final class PoolTrace {

    static final String FILE = System.getProperty("moestream.pool.trace");
    static final boolean ENABLED = FILE != null && !FILE.isEmpty();
    private static final int CAPACITY = 200_000;
    private static final int FIELDS = 8;
    private static final String HEADER = "start_ns,caller_done_ns,closed_ns,caller_tasks,worker_joined_ns,worker_left_ns,worker_tasks,tasks";

    private final long[] jobs = new long[CAPACITY * FIELDS];
    private long count;
    private volatile long joined;
    private volatile long left;
    private volatile int workerTasks;

    PoolTrace() {
        Runtime.getRuntime().addShutdownHook(new Thread(this::write, "moestream-pool-trace"));
    }

    /** A job opens: no worker in it yet (called before the workers can join). */
    void open() {
        joined = 0;
        left = 0;
        workerTasks = 0;
    }

    /** A worker ran {@code tasks} tasks of the open job from {@code from} to {@code to} (the latest worker's times). */
    void worker(long from, long to, int tasks) {
        joined = from;
        left = to;
        workerTasks += tasks;
    }

    /** The caller closed the job (after every worker left it). */
    synchronized void job(long start, long callerDone, long closed, int callerTasks, int tasks) {
        int o = (int) (count++ % CAPACITY) * FIELDS;
        jobs[o] = start;
        jobs[o + 1] = callerDone;
        jobs[o + 2] = closed;
        jobs[o + 3] = callerTasks;
        jobs[o + 4] = joined;
        jobs[o + 5] = left;
        jobs[o + 6] = workerTasks;
        jobs[o + 7] = tasks;
    }

    private synchronized void write() {
        try (PrintWriter w = new PrintWriter(Files.newBufferedWriter(Path.of(FILE)))) {
            w.println(HEADER);
            long first = Math.max(0, count - CAPACITY);
            for (long j = first; j < count; j++) {
                int o = (int) (j % CAPACITY) * FIELDS;
                StringBuilder line = new StringBuilder();
                for (int f = 0; f < FIELDS; f++) {
                    line.append(f == 0 ? "" : ",").append(jobs[o + f]);
                }
                w.println(line);
            }
        } catch (IOException e) {
            System.err.println("moestream: cannot write the pool trace to " + FILE + ": " + e.getMessage());
        }
    }
}
