package io.moestream.runtime.sched;

import io.moestream.runtime.model.Engine;
import io.moestream.runtime.model.StepPlan;
import io.moestream.runtime.model.StepResult;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Runs a set of {@link Request}s to completion on one {@link Engine}: the {@link StepPlanner}
 * admits and allocates, {@link Engine#step} computes, each request samples and applies its finish
 * rules, and the loop closes (vLLM's schedule → execute → update). The loop of {@code generate},
 * {@code Engine.generate} and the benchmarks; the Flink operator runs the same planner and
 * lifecycle one step per mailbox action.
 */
public final class Batch {

    private Batch() {}

    /** Runs every request until it {@linkplain Request#finished() finishes}; returns how many steps it took. */
    public static int run(Engine engine, StepPlanner planner, List<Request> requests) {
        Map<String, ArrayDeque<Request>> waiting = new LinkedHashMap<>();
        for (Request r : requests) {
            waiting.computeIfAbsent(r.tenant(), t -> new ArrayDeque<>()).add(r);
        }
        List<Request> running = new ArrayList<>();
        int steps = 0;
        while (!waiting.isEmpty() || !running.isEmpty()) {
            Map<String, Integer> admissible = new LinkedHashMap<>();
            waiting.forEach((tenant, q) -> admissible.put(tenant, q.size()));
            for (String tenant : planner.admissions(running, admissible)) {
                ArrayDeque<Request> q = waiting.get(tenant);
                running.add(q.poll());
                if (q.isEmpty()) {
                    waiting.remove(tenant);
                }
            }
            step(engine, planner, running);
            running.removeIf(Request::finished);
            steps++;
        }
        return steps;
    }

    /** One step over the running requests, as the planner allocates it. */
    static void step(Engine engine, StepPlanner planner, List<Request> running) {
        int[] tokens = planner.allocate(running);
        List<StepPlan.Sequence> plan = new ArrayList<>();
        List<Request> stepped = new ArrayList<>();
        int total = 0;
        for (int i = 0; i < tokens.length; i++) {
            if (tokens[i] > 0) {
                plan.add(running.get(i).chunk(tokens[i]));
                stepped.add(running.get(i));
                total += tokens[i];
            }
        }
        if (plan.isEmpty()) {
            throw new IllegalStateException(running.size() + " requests are running but the planner gave none a token");
        }
        long started = System.nanoTime();
        StepResult result = engine.step(new StepPlan(plan));
        long nanos = System.nanoTime() - started;
        for (int i = 0; i < plan.size(); i++) {
            int n = plan.get(i).tokens().length;
            stepped.get(i).computed(n, result.logits(i), nanos * n / total);
        }
    }
}
