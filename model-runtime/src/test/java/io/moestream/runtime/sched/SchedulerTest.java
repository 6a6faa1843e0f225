package io.moestream.runtime.sched;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.Test;

class SchedulerTest {

    private static Schedule.Chunk chunk(int seq, int start, int length, boolean end) {
        return new Schedule.Chunk(seq, start, length, end);
    }

    @Test
    void longPromptIsPrefilledInChunksWithinTheBudget() {
        Scheduler s = new Scheduler(new SchedulerConfig(4, 2));
        int a = s.add(10);
        Schedule step = s.schedule();
        assertThat(step.chunks()).containsExactly(chunk(a, 0, 4, false));
        s.update(step, Set.of());
        step = s.schedule();
        assertThat(step.chunks()).containsExactly(chunk(a, 4, 4, false));
        s.update(step, Set.of());
        step = s.schedule();
        assertThat(step.chunks()).containsExactly(chunk(a, 8, 2, true));
        s.update(step, Set.of());
        // prompt done, one sampled token to decode
        step = s.schedule();
        assertThat(step.chunks()).containsExactly(chunk(a, 10, 1, true));
        s.update(step, Set.of(a));
        assertThat(s.hasWork()).isFalse();
        assertThat(s.schedule().isEmpty()).isTrue();
    }

    @Test
    void decodesGoFirstThenPrefillsFillTheRestOfTheBudget() {
        Scheduler s = new Scheduler(new SchedulerConfig(6, 3));
        int a = s.add(3);
        Schedule step = s.schedule();
        s.update(step, Set.of());
        int b = s.add(4);
        int c = s.add(4);
        step = s.schedule();
        // a decodes (1), b gets 4; c would start with a lone token, so it waits for the next step
        assertThat(step.chunks()).containsExactly(chunk(a, 3, 1, true), chunk(b, 0, 4, true));
        assertThat(step.tokens()).isEqualTo(5);
        s.update(step, Set.of());
        step = s.schedule();
        assertThat(step.chunks()).containsExactly(chunk(a, 4, 1, true), chunk(b, 4, 1, true), chunk(c, 0, 4, true));
    }

    @Test
    void aPromptIsNotCutBeforeItsLastToken() {
        Scheduler s = new Scheduler(new SchedulerConfig(37, 4));
        int a = s.add(38);
        Schedule step = s.schedule();
        assertThat(step.chunks()).containsExactly(chunk(a, 0, 36, false));
        s.update(step, Set.of());
        assertThat(s.schedule().chunks()).containsExactly(chunk(a, 36, 2, true));
    }

    @Test
    void admissionIsFirstComeFirstServedUpToMaxSequences() {
        Scheduler s = new Scheduler(new SchedulerConfig(100, 2));
        int a = s.add(2);
        int b = s.add(2);
        int c = s.add(2);
        Schedule step = s.schedule();
        assertThat(step.chunks()).extracting(Schedule.Chunk::sequence).containsExactly(a, b);
        assertThat(s.running()).isEqualTo(2);
        assertThat(s.waiting()).isEqualTo(1);
        s.update(step, Set.of(a)); // a finishes after its first token: c gets its slot
        step = s.schedule();
        assertThat(step.chunks()).containsExactly(chunk(b, 2, 1, true), chunk(c, 0, 2, true));
    }

    @Test
    void randomWorkloadsRespectTheBudgetAndEverySequenceProgresses() {
        java.util.SplittableRandom r = new java.util.SplittableRandom(11);
        for (int round = 0; round < 50; round++) {
            int budget = 1 + r.nextInt(20);
            int maxSeqs = 1 + r.nextInt(budget);
            Scheduler s = new Scheduler(new SchedulerConfig(budget, maxSeqs));
            Map<Integer, Integer> toGenerate = new HashMap<>();
            Map<Integer, Integer> computed = new HashMap<>();
            List<Integer> admittedOrder = new ArrayList<>();
            for (int i = 0; i < 12; i++) {
                toGenerate.put(s.add(1 + r.nextInt(30)), 1 + r.nextInt(5));
            }
            int steps = 0;
            while (s.hasWork()) {
                Schedule step = s.schedule();
                assertThat(step.tokens()).isPositive().isLessThanOrEqualTo(budget);
                assertThat(step.chunks().size()).isLessThanOrEqualTo(maxSeqs);
                assertThat(step.chunks().size()).isEqualTo(s.running()); // every running sequence progresses
                Set<Integer> finished = new HashSet<>();
                for (Schedule.Chunk c : step.chunks()) {
                    assertThat(c.start()).isEqualTo(computed.getOrDefault(c.sequence(), 0));
                    if (c.start() == 0) {
                        admittedOrder.add(c.sequence());
                    }
                    computed.merge(c.sequence(), c.length(), Integer::sum);
                    if (c.reachesEnd() && toGenerate.merge(c.sequence(), -1, Integer::sum) == 0) {
                        finished.add(c.sequence());
                    }
                }
                s.update(step, finished);
                assertThat(++steps).isLessThan(10_000);
            }
            assertThat(admittedOrder).isSorted();
            assertThat(admittedOrder).hasSize(12);
        }
    }

    @Test
    void rejectsBadInput() {
        assertThatThrownBy(() -> new SchedulerConfig(2, 3)).hasMessageContaining("tokenBudget 2 must be >= maxSequences 3");
        assertThatThrownBy(() -> new SchedulerConfig(2, 0)).hasMessageContaining("maxSequences");
        Scheduler s = new Scheduler(new SchedulerConfig(4, 1));
        assertThatThrownBy(() -> s.add(0)).hasMessageContaining("at least one prompt token");
        s.add(3);
        Schedule step = s.schedule();
        s.update(step, Set.of());
        assertThatThrownBy(() -> s.update(step, Set.of())).isInstanceOf(IllegalStateException.class);
    }
}
