package io.moestream.runtime.sched;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The one step planner: admission, fairness, allocation and the chunking rule. */
class StepPlannerTest {

    private record Seq(String tenant, boolean decoding, int tokensWanted) implements StepPlanner.Planned {}

    private static Seq decoding(String tenant) {
        return new Seq(tenant, true, 1);
    }

    private static Seq prefilling(String tenant, int left) {
        return new Seq(tenant, false, left);
    }

    @Test
    void aloneATenantTakesEveryPlace() {
        StepPlanner planner = new StepPlanner(64, 4, 0.5);
        assertThat(planner.admissions(List.of(), Map.of("a", 50))).containsExactly("a", "a", "a", "a");
    }

    @Test
    void admissionAlternatesTenantsAndKeepsEachWithinItsShare() {
        StepPlanner planner = new StepPlanner(64, 4, 0.5);
        Map<String, Integer> waiting = new LinkedHashMap<>();
        waiting.put("a", 50);
        waiting.put("b", 1);
        waiting.put("c", 3);
        assertThat(planner.admissions(List.of(), waiting)).containsExactly("a", "b", "c", "a");

        // "a" holds 2 of 4 places (its share) while "c" waits: the free place goes to "c"
        List<Seq> running = List.of(decoding("a"), decoding("a"), decoding("c"));
        assertThat(planner.admissions(running, Map.of("a", 48, "c", 2))).containsExactly("c");
    }

    @Test
    void spareCapacityIsNotWithheldWhenEveryWaitingTenantIsAtItsShare() {
        StepPlanner planner = new StepPlanner(64, 8, 0.25);
        List<Seq> running = List.of(decoding("a"), decoding("a"), decoding("b"), decoding("b"));
        assertThat(planner.admissions(running, Map.of("a", 10, "b", 10))).hasSize(4);
    }

    @Test
    void theLeastRecentlyServedTenantGoesFirst() {
        StepPlanner planner = new StepPlanner(64, 1, 1.0);
        Map<String, Integer> waiting = new LinkedHashMap<>();
        waiting.put("a", 5);
        waiting.put("b", 5);
        List<String> order = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            order.addAll(planner.admissions(List.of(), waiting));
        }
        assertThat(order).containsExactly("a", "b", "a", "b");
    }

    @Test
    void decodeTokensComeFirstThenPrefillChunksWithinTheBudget() {
        StepPlanner planner = new StepPlanner(8, 4, 1.0);
        int[] tokens = planner.allocate(List.of(decoding("a"), prefilling("a", 20), decoding("b"), prefilling("a", 3)));
        assertThat(tokens).containsExactly(1, 6, 1, 0);
        assertThat(planner.allocate(List.of(prefilling("a", 2), prefilling("a", 3)))).containsExactly(2, 3);
    }

    @Test
    void prefillTokensAreSharedBetweenTenantsAndSpareTokensAreUsed() {
        StepPlanner planner = new StepPlanner(16, 4, 0.5);
        assertThat(planner.allocate(List.of(prefilling("a", 100), prefilling("a", 100), prefilling("b", 100))))
                .containsExactly(8, 0, 8);
        assertThat(planner.allocate(List.of(prefilling("a", 100), prefilling("b", 3)))).containsExactly(13, 3);
    }

    @Test
    void noAdmissionWithoutPlaceOrBudget() {
        StepPlanner planner = new StepPlanner(4, 4, 1.0);
        assertThat(planner.admissions(List.of(decoding("a"), decoding("a"), decoding("a"), decoding("a")),
                Map.of("b", 1))).isEmpty();
        assertThat(planner.admissions(List.of(prefilling("a", 10)), Map.of("b", 1))).isEmpty();
        assertThatThrownBy(() -> new StepPlanner(2, 4, 1.0)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void aPromptIsNeverCutIntoALoneToken() {
        assertThat(StepPlanner.chunk(10, 20)).isEqualTo(10);
        assertThat(StepPlanner.chunk(1, 5)).isEqualTo(1); // a one-token prompt is one token whatever the mix
        assertThat(StepPlanner.chunk(10, 9)).isEqualTo(8); // not 9, which would leave a lone last token
        assertThat(StepPlanner.chunk(10, 1)).isZero();     // not a lone first or middle token: wait
        assertThat(StepPlanner.chunk(3, 2)).isZero();      // 2 would leave 1, 1 would be alone
        for (int left = 1; left < 40; left++) {
            for (int budget = 0; budget < 45; budget++) {
                int n = StepPlanner.chunk(left, budget);
                assertThat(n).isBetween(0, Math.min(left, budget));
                if (n > 0 && left > 1) {
                    assertThat(n).as("left %d budget %d", left, budget).isGreaterThan(1);
                    assertThat(left - n).as("left %d budget %d", left, budget).isNotEqualTo(1);
                }
            }
        }
        StepPlanner planner = new StepPlanner(6, 4, 1.0);
        // 3 decoders leave 3 tokens: a 4-token prompt gets 2 (not 3, leaving 1)
        assertThat(planner.allocate(List.of(decoding("a"), decoding("a"), decoding("a"), prefilling("b", 4))))
                .containsExactly(1, 1, 1, 2);
    }

    @Test
    void aLongPrefillOfOneTenantDoesNotKeepAnotherTenantOut() {
        StepPlanner planner = new StepPlanner(16, 4, 0.5);
        // "a" still has 500 prompt tokens, far beyond the budget, but it holds at most half of the prefill tokens
        assertThat(planner.admissions(List.of(prefilling("a", 500)), Map.of("b", 1))).containsExactly("b");
        assertThat(planner.allocate(List.of(prefilling("a", 500), prefilling("b", 5)))).containsExactly(11, 5);
    }
}
