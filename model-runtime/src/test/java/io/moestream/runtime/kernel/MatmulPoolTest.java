package io.moestream.runtime.kernel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.concurrent.atomic.AtomicIntegerArray;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class MatmulPoolTest {

    @AfterEach
    void restore() {
        MatmulPool.setThreads(Runtime.getRuntime().availableProcessors());
    }

    @Test
    void runsEveryTaskExactlyOnceAcrossManyJobs() {
        MatmulPool.setThreads(3);
        MatmulPool pool = MatmulPool.get();
        assertThat(pool.threads()).isEqualTo(3);
        for (int job = 0; job < 200; job++) {
            AtomicIntegerArray hits = new AtomicIntegerArray(37);
            pool.run(hits.length(), hits::incrementAndGet);
            for (int i = 0; i < hits.length(); i++) {
                assertThat(hits.get(i)).as("job %d task %d", job, i).isEqualTo(1);
            }
        }
    }

    @Test
    void workersJoiningLateNeverRunATaskTwiceOrMissOne() {
        // Jobs of two or three short tasks: the caller often takes every chunk and closes the job
        // before a worker arrives, so joining and closing race on every job.
        MatmulPool.setThreads(3);
        MatmulPool pool = MatmulPool.get();
        for (int job = 0; job < 20_000; job++) {
            int tasks = 2 + job % 2;
            AtomicIntegerArray hits = new AtomicIntegerArray(tasks);
            pool.run(tasks, hits::incrementAndGet);
            for (int i = 0; i < tasks; i++) {
                assertThat(hits.get(i)).as("job %d task %d", job, i).isEqualTo(1);
            }
        }
    }

    @Test
    void stepsThatWakeTheWorkersFirstRunEveryTaskOnce() throws InterruptedException {
        // a step wakes the workers before its first job; some steps come after the workers parked
        MatmulPool.setThreads(3);
        MatmulPool pool = MatmulPool.get();
        for (int step = 0; step < 300; step++) {
            pool.wake();
            if (step % 50 == 0) {
                Thread.sleep(2); // past the workers' spin: they park
            }
            for (int job = 0; job < 3; job++) {
                AtomicIntegerArray hits = new AtomicIntegerArray(5 + job);
                pool.run(hits.length(), hits::incrementAndGet);
                for (int i = 0; i < hits.length(); i++) {
                    assertThat(hits.get(i)).as("step %d job %d task %d", step, job, i).isEqualTo(1);
                }
            }
        }
    }

    @Test
    void propagatesATaskFailureAndStaysUsable() {
        MatmulPool.setThreads(2);
        MatmulPool pool = MatmulPool.get();
        assertThatThrownBy(() -> pool.run(16, i -> {
            if (i == 11) {
                throw new IllegalStateException("task 11");
            }
        })).isInstanceOf(IllegalStateException.class).hasMessage("task 11");
        AtomicIntegerArray hits = new AtomicIntegerArray(8);
        pool.run(8, hits::incrementAndGet);
        assertThat(hits.get(7)).isEqualTo(1);
    }

    @Test
    void aReplacedPoolRunsJobsOnTheCaller() {
        MatmulPool.setThreads(2);
        MatmulPool old = MatmulPool.get();
        MatmulPool.setThreads(1);
        AtomicIntegerArray hits = new AtomicIntegerArray(5);
        old.run(5, hits::incrementAndGet);
        assertThat(hits.get(4)).isEqualTo(1);
    }
}
