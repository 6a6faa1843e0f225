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

    private record Seq(String tenant, boolean decoding, int tokensWanted, int positions) implements StepPlanner.Planned {}

    private static Seq decoding(String tenant) {
        return new Seq(tenant, true, 1, 0);
    }

    private static Seq decodingAfter(String tenant, int positions) {
        return new Seq(tenant, true, 1, positions);
    }

    private static Seq prefilling(String tenant, int left) {
        return new Seq(tenant, false, left, 0);
    }

    private static Seq prefillingAfter(String tenant, int left, int positions) {
        return new Seq(tenant, false, left, positions);
    }

    private static long work(List<Seq> running, int[] tokens) {
        long sum = 0;
        for (int i = 0; i < tokens.length; i++) {
            sum += StepPlanner.work(tokens[i], running.get(i).positions());
        }
        return sum;
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
        assertThat(tokens).containsExactly(1, 4, 1, 0); // 6 tokens left: a cut chunk is a multiple of 4
        assertThat(planner.allocate(List.of(prefilling("a", 2), prefilling("a", 3)))).containsExactly(2, 3);
    }

    @Test
    void prefillTokensAreSharedBetweenTenantsAndSpareTokensAreUsed() {
        StepPlanner planner = new StepPlanner(16, 4, 0.5);
        assertThat(planner.allocate(List.of(prefilling("a", 100), prefilling("a", 100), prefilling("b", 100))))
                .containsExactly(8, 0, 8);
        assertThat(planner.allocate(List.of(prefilling("a", 100), prefilling("b", 3)))).containsExactly(12, 3);
    }

    @Test
    void noAdmissionWithoutPlaceOrBudget() {
        StepPlanner planner = new StepPlanner(5, 4, 1.0);
        assertThat(planner.admissions(List.of(decoding("a"), decoding("a"), decoding("a"), decoding("a")),
                Map.of("b", 1))).isEmpty();
        assertThat(planner.admissions(List.of(prefilling("a", 10)), Map.of("b", 1))).isEmpty();
        assertThatThrownBy(() -> new StepPlanner(2, 4, 1.0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new StepPlanner(4, 1, 1.0)).hasMessageContaining("tokenBudget >= 5");
    }

    @Test
    void aPromptIsNeverCutIntoALoneToken() {
        assertThat(StepPlanner.chunk(10, 20)).isEqualTo(10);
        assertThat(StepPlanner.chunk(1, 5)).isEqualTo(1); // a one-token prompt is one token whatever the mix
        assertThat(StepPlanner.chunk(10, 9)).isEqualTo(8); // a multiple of 4 that leaves 2
        assertThat(StepPlanner.chunk(10, 7)).isEqualTo(4); // not 7: cut chunks are multiples of 4
        assertThat(StepPlanner.chunk(9, 8)).isEqualTo(4);  // not 8, which would leave a lone last token
        assertThat(StepPlanner.chunk(10, 3)).isZero();     // no multiple of 4 fits: wait
        assertThat(StepPlanner.chunk(3, 2)).isZero();      // 2 would leave 1, 1 would be alone
        for (int left = 1; left < 40; left++) {
            for (int budget = 0; budget < 45; budget++) {
                int n = StepPlanner.chunk(left, budget);
                assertThat(n).isBetween(0, Math.min(left, budget));
                if (n > 0 && n < left) {
                    assertThat(n % StepPlanner.ALIGN).as("left %d budget %d", left, budget).isZero();
                    assertThat(left - n).as("left %d budget %d", left, budget).isGreaterThan(1);
                }
                if (budget >= left) {
                    assertThat(n).isEqualTo(left);
                } else if (budget >= StepPlanner.LEAST_TOKEN_BUDGET) {
                    assertThat(n).as("left %d budget %d: progress", left, budget).isPositive();
                }
            }
        }
        StepPlanner planner = new StepPlanner(8, 4, 1.0);
        // 3 decoders leave 5 tokens: a 9-token prompt gets 4 (not 5, no multiple of 4), a 5-token one all 5
        assertThat(planner.allocate(List.of(decoding("a"), decoding("a"), decoding("a"), prefilling("b", 9))))
                .containsExactly(1, 1, 1, 4);
        assertThat(planner.allocate(List.of(decoding("a"), decoding("a"), decoding("a"), prefilling("b", 5))))
                .containsExactly(1, 1, 1, 5);
    }

    @Test
    void aLongPrefillOfOneTenantDoesNotKeepAnotherTenantOut() {
        StepPlanner planner = new StepPlanner(16, 4, 0.5);
        // "a" still has 500 prompt tokens, far beyond the budget, but it holds at most half of the prefill tokens
        assertThat(planner.admissions(List.of(prefilling("a", 500)), Map.of("b", 1))).containsExactly("b");
        assertThat(planner.allocate(List.of(prefilling("a", 500), prefilling("b", 5)))).containsExactly(8, 5);
    }

    @Test
    void aChunkShrinksAsItsCachedContextGrowsAndTheStepStaysWithinTheWorkBudget() {
        long budget = 1L << 20;
        StepPlanner planner = new StepPlanner(256, budget, 4, 1.0);
        int previous = Integer.MAX_VALUE;
        for (int positions = 0; positions <= 32_768; positions += 256) {
            List<Seq> running = List.of(prefillingAfter("a", 40_000, positions));
            int[] tokens = planner.allocate(running);
            assertThat(tokens[0]).as("at %d positions", positions).isBetween(StepPlanner.ALIGN, 256).isLessThanOrEqualTo(previous);
            assertThat(tokens[0] % StepPlanner.ALIGN).isZero();
            assertThat(work(running, tokens)).as("at %d positions", positions).isLessThanOrEqualTo(budget);
            // the largest cut chunk within the bound: 4 more tokens would exceed it (or the token budget)
            assertThat(tokens[0] == 256 || StepPlanner.work(tokens[0] + StepPlanner.ALIGN, positions) > budget).isTrue();
            previous = tokens[0];
        }
        assertThat(planner.allocate(List.of(prefillingAfter("a", 40_000, 0)))).containsExactly(256);
        // 1 Mi units at 32,768 cached positions: 31 tokens fit (31 * 32,799 <= 2^20 < 32 * 32,800), cut to 28
        assertThat(planner.allocate(List.of(prefillingAfter("a", 40_000, 32_768)))).containsExactly(28);
    }

    @Test
    void decodeWorkComesFirstAndPrefillChunksShareTheRest() {
        StepPlanner planner = new StepPlanner(64, 10_000, 4, 1.0);
        List<Seq> running = List.of(decodingAfter("a", 3_999), prefillingAfter("a", 100, 1_000), prefillingAfter("b", 100, 10));
        int[] tokens = planner.allocate(running);
        // decode: 1 * 4,000; then 5 tokens would fit the 6,000 left (5 * 1,005), cut to 4: 4 * 1,004 = 4,016;
        // then 39 would fit the 1,984 left (39 * 49), cut to 36: 36 * 46 = 1,656
        assertThat(tokens).containsExactly(1, 4, 36);
        assertThat(work(running, tokens)).isEqualTo(4_000 + 4_016 + 1_656);
    }

    @Test
    void pastTheWorkBudgetAChunkStillGetsItsLeastSoNothingStarves() {
        StepPlanner planner = new StepPlanner(64, 100, 4, 1.0);
        // a decoder deep in its context uses up the work budget: the prefill still gets its least chunk, 4
        assertThat(planner.allocate(List.of(decodingAfter("a", 5_000), prefillingAfter("b", 50, 5_000))))
                .containsExactly(1, 4);
        // at most 5 left: all of them (4 would leave a lone token from 5)
        assertThat(planner.allocate(List.of(prefillingAfter("b", 5, 5_000)))).containsExactly(5);
        assertThat(planner.allocate(List.of(prefillingAfter("b", 3, 5_000)))).containsExactly(3);
        assertThat(planner.allocate(List.of(prefillingAfter("b", 1, 5_000)))).containsExactly(1);
        // the token budget still binds: no room for a least chunk means the request waits
        StepPlanner tight = new StepPlanner(5, 100, 4, 1.0);
        assertThat(tight.allocate(List.of(decoding("a"), decoding("a"), decoding("a"), prefillingAfter("b", 50, 5_000))))
                .containsExactly(1, 1, 1, 0);
        for (int left = 1; left < 40; left++) {
            for (int tokens = 5; tokens < 45; tokens++) { // 5: room for any least chunk
                for (long work = 0; work < 2_000; work += 97) {
                    int n = StepPlanner.chunk(left, tokens, work, 300);
                    assertThat(n).as("left %d tokens %d work %d", left, tokens, work).isBetween(1, Math.min(left, tokens));
                    if (n < left) {
                        assertThat(n % StepPlanner.ALIGN).isZero();
                        assertThat(left - n).isGreaterThan(1);
                    }
                }
            }
        }
        assertThatThrownBy(() -> new StepPlanner(64, 0, 4, 1.0)).isInstanceOf(IllegalArgumentException.class);
    }
}
