package io.moestream.runtime.kernel;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.IntConsumer;

/**
 * A fixed set of threads that split one matmul's row chunks: {@code threads - 1} daemon workers plus
 * the calling thread, all taking chunk indices from one counter (so a slow or descheduled thread
 * gets fewer chunks). One job at a time: a caller that finds the pool busy (another engine thread)
 * runs its job alone instead of queueing.
 *
 * <p>Workers spin 50 us after a job (a decode step runs ~40 jobs back to back, a few
 * microseconds of serial work apart) and then park, so an idle pool takes no core from Kafka and
 * Flink; a step {@link #wake}s them before its first job. They never spin through a whole step: on
 * a loaded machine a spinning worker uses up its share of the core and is then descheduled inside
 * a chunk, which the caller waits for (decode at half speed under load).
 *
 * <p>A worker joins a job through {@link #inside} (the number of workers in the job, or
 * {@link #CLOSED}); when the caller has taken the last chunk it closes the job as soon as no worker
 * is inside. So the caller waits only for chunks in progress, never for a worker that has not been
 * scheduled yet. A worker that arrives after the close skips the job.
 *
 * <p>The shared pool has {@link #setThreads} threads (default: available processors, or system
 * property {@code moestream.threads}). With system property {@code moestream.pool.trace} set to a
 * file, every job's timeline is written there at exit ({@link PoolTrace}; benchmarks only).
 */
public final class MatmulPool {

    private static final long SPIN_NANOS = 50_000;
    private static volatile MatmulPool shared;

    private final int threads;
    private final Thread[] workers;
    private final ReentrantLock busy = new ReentrantLock();
    private static final int CLOSED = -1;

    private final AtomicInteger nextTask = new AtomicInteger();
    /** Workers inside the current job, or {@link #CLOSED} between jobs. */
    private final AtomicInteger inside = new AtomicInteger(CLOSED);
    private volatile int generation;
    /** Counts {@link #wake} calls: a worker woken by one spins again before parking. */
    private volatile int wakes;
    /** Whether a job ran on the workers since the last {@link #wake}. */
    private volatile boolean ranSinceWake = true;
    private volatile boolean shutdown;
    private IntConsumer body;
    private int tasks;
    private volatile Throwable failure;
    private final PoolTrace trace = PoolTrace.ENABLED ? new PoolTrace() : null;

    private MatmulPool(int threads) {
        this.threads = threads;
        this.workers = new Thread[threads - 1];
        for (int i = 0; i < workers.length; i++) {
            Thread t = new Thread(this::workerLoop, "moestream-matmul-" + (i + 1));
            t.setDaemon(true);
            workers[i] = t;
            t.start();
        }
    }

    /** The shared pool. */
    public static MatmulPool get() {
        MatmulPool p = shared;
        if (p == null) {
            synchronized (MatmulPool.class) {
                p = shared;
                if (p == null) {
                    p = new MatmulPool(Math.max(1, Integer.getInteger("moestream.threads",
                            Runtime.getRuntime().availableProcessors())));
                    shared = p;
                }
            }
        }
        return p;
    }

    /** Replaces the shared pool with one of {@code threads} threads (the old one's workers exit). */
    public static synchronized void setThreads(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        }
        MatmulPool old = shared;
        if (old != null && old.threads == threads) {
            return;
        }
        shared = new MatmulPool(threads);
        if (old != null) {
            old.close();
        }
    }

    /** Number of threads a job is split over (callers included). */
    public int threads() {
        return threads;
    }

    /**
     * Wakes parked workers ahead of a step's first job, so that they are spinning when it comes
     * instead of starting one wake-up (tens of microseconds) late; they park again as after a job.
     * Nothing when no job ran since the last wake: the steps of a model whose products all run on
     * the caller (below the pool's size threshold) would only make the workers spin for nothing.
     */
    public void wake() {
        if (!ranSinceWake) {
            return;
        }
        ranSinceWake = false;
        wakes++;
        for (Thread t : workers) {
            LockSupport.unpark(t);
        }
    }

    /** Runs {@code body.accept(i)} for i in [0, tasks), split over the pool; returns when all are done. */
    public void run(int tasks, IntConsumer body) {
        if (tasks <= 1 || workers.length == 0 || !busy.tryLock()) {
            runInline(tasks, body);
            return;
        }
        if (shutdown) { // replaced by setThreads while the caller held on to it
            busy.unlock();
            runInline(tasks, body);
            return;
        }
        long start = PoolTrace.ENABLED ? System.nanoTime() : 0;
        try {
            this.body = body;
            this.tasks = tasks;
            this.failure = null;
            nextTask.set(0);
            if (PoolTrace.ENABLED) {
                trace.open();
            }
            ranSinceWake = true;
            inside.set(0); // opens the job; publishes body/tasks to the workers that join it
            generation++;
            for (Thread t : workers) {
                LockSupport.unpark(t);
            }
            int done = 0;
            long worked = 0;
            try {
                done = work(body, tasks);
                worked = PoolTrace.ENABLED ? System.nanoTime() : 0;
            } finally {
                while (!inside.compareAndSet(0, CLOSED)) {
                    Thread.onSpinWait();
                }
                this.body = null;
            }
            if (PoolTrace.ENABLED) {
                trace.job(start, worked, System.nanoTime(), done, tasks);
            }
            Throwable f = failure;
            if (f instanceof RuntimeException e) {
                throw e;
            } else if (f instanceof Error e) {
                throw e;
            }
        } finally {
            busy.unlock();
        }
    }

    private static void runInline(int tasks, IntConsumer body) {
        for (int i = 0; i < tasks; i++) {
            body.accept(i);
        }
    }

    /** Takes and runs tasks until none is left; returns how many this thread ran. */
    private int work(IntConsumer body, int tasks) {
        int i;
        int done = 0;
        while ((i = nextTask.getAndIncrement()) < tasks) {
            body.accept(i);
            done++;
        }
        return done;
    }

    private void workerLoop() {
        int seen = 0;
        while (!shutdown) {
            long spinStart = System.nanoTime();
            while (generation == seen && !shutdown) {
                if (System.nanoTime() - spinStart < SPIN_NANOS) {
                    Thread.onSpinWait();
                } else {
                    int w = wakes;
                    LockSupport.parkNanos(this, 1_000_000);
                    if (wakes != w) {
                        spinStart = System.nanoTime();
                    }
                }
            }
            if (shutdown) {
                return;
            }
            seen = generation;
            if (!join()) {
                continue;
            }
            try {
                long joined = PoolTrace.ENABLED ? System.nanoTime() : 0;
                int done = work(body, tasks);
                if (PoolTrace.ENABLED) {
                    trace.worker(joined, System.nanoTime(), done);
                }
            } catch (Throwable t) {
                failure = t;
                nextTask.set(Integer.MAX_VALUE / 2);
            } finally {
                inside.decrementAndGet();
            }
        }
    }

    /** Enters the open job, if any; false once the caller has closed it. */
    private boolean join() {
        int n;
        do {
            n = inside.get();
            if (n == CLOSED) {
                return false;
            }
        } while (!inside.compareAndSet(n, n + 1));
        return true;
    }

    /** Stops the workers; takes the job lock so that no job is in flight or can start on them. */
    private void close() {
        busy.lock();
        try {
            shutdown = true;
        } finally {
            busy.unlock();
        }
        for (Thread t : workers) {
            LockSupport.unpark(t);
        }
    }
}
