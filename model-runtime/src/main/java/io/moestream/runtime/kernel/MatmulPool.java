package io.moestream.runtime.kernel;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.IntConsumer;

/**
 * A fixed set of threads that split one matmul's row chunks: {@code threads - 1} daemon workers plus
 * the calling thread, all taking chunk indices from one counter (so a slow or descheduled thread
 * gets fewer chunks). Workers spin briefly between jobs (a decode step runs ~100 matmuls
 * back to back) and then park. One job at a time: a caller that finds the pool busy (another engine
 * thread) runs its job alone instead of queueing.
 *
 * <p>A worker joins a job through {@link #inside} (the number of workers in the job, or
 * {@link #CLOSED}); when the caller has taken the last chunk it closes the job as soon as no worker
 * is inside. So the caller waits only for chunks in progress, never for a worker that has not been
 * scheduled yet, and does not spin on a core that Kafka and Flink need. A worker that arrives after
 * the close skips the job.
 *
 * <p>The shared pool has {@link #setThreads} threads (default: available processors, or system
 * property {@code moestream.threads}).
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
    private volatile boolean shutdown;
    private IntConsumer body;
    private int tasks;
    private volatile Throwable failure;

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
        try {
            this.body = body;
            this.tasks = tasks;
            this.failure = null;
            nextTask.set(0);
            inside.set(0); // opens the job; publishes body/tasks to the workers that join it
            generation++;
            for (Thread t : workers) {
                LockSupport.unpark(t);
            }
            try {
                work(body, tasks);
            } finally {
                while (!inside.compareAndSet(0, CLOSED)) {
                    Thread.onSpinWait();
                }
                this.body = null;
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

    private void work(IntConsumer body, int tasks) {
        int i;
        while ((i = nextTask.getAndIncrement()) < tasks) {
            body.accept(i);
        }
    }

    private void workerLoop() {
        int seen = 0;
        while (!shutdown) {
            long spinStart = System.nanoTime();
            while (generation == seen && !shutdown) {
                if (System.nanoTime() - spinStart < SPIN_NANOS) {
                    Thread.onSpinWait();
                } else {
                    LockSupport.parkNanos(this, 1_000_000);
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
                work(body, tasks);
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
