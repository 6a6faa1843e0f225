package io.moestream.runtime.bench;

import io.moestream.runtime.gguf.GgufTensor;
import io.moestream.runtime.kernel.Kernels;
import io.moestream.runtime.kernel.MatmulPool;
import io.moestream.runtime.kv.KvCodec;
import io.moestream.runtime.model.Engine;
import io.moestream.runtime.model.GenerationRequest;
import io.moestream.runtime.model.Model;
import io.moestream.runtime.model.ModelConfig;
import io.moestream.runtime.model.StepPlan;
import io.moestream.runtime.model.StepResult;
import io.moestream.runtime.sampler.SamplingParams;
import io.moestream.runtime.sched.Request;

import java.lang.management.CompilationMXBean;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Prefill and decode throughput of a model, as llama-bench / llama-batched-bench measure it: B
 * sequences each prefill P random prompt tokens, then decode G tokens each in lockstep (every step
 * feeds one token per sequence). Throughputs are aggregates over the batch. Also measures the
 * machine's memory read bandwidth and the weight bytes one decoded token must read, so a figure can
 * be set against its bandwidth ceiling.
 *
 * <p>Batching: as the inference operator runs them, through {@link Engine#step}: the prompts are
 * prefilled in batched steps (whole prompts, up to 512 tokens per step), then each decode step
 * feeds one token of every sequence, so each weight row is read once per step for the whole batch
 * ({@code decode_batched: true}).
 *
 * <p>Warm-up: the kernels, then rounds of the measured procedure on
 * throw-away requests until the JIT has compiled nothing for two rounds (at most
 * {@link #MAX_WARM_UP_NANOS}), so the timed steps run compiled code and no compiler thread takes
 * one of their cores.
 *
 * <p>Load: the 1-minute load average before the run and the process CPU seconds spent decoding are
 * reported; on a shared machine {@code decode_cpu_seconds < threads * decode_seconds} means the
 * threads were descheduled part of the time.
 */
public final class InferenceBenchmark {

    /** Most prompt tokens per prefill step (whole prompts per step; one longer prompt is its own step). */
    private static final int PREFILL_STEP_TOKENS = 512;
    /** Warm-up rounds where the JIT's compile time cannot be read: this long. */
    private static final long WARM_UP_NANOS = 2_000_000_000L;
    /** Decode steps of one warm-up round of the measured procedure. */
    private static final int WARM_UP_ROUND_TOKENS = 32;
    /** Warm-up rounds stop after this long even if the JIT is still compiling. */
    private static final long MAX_WARM_UP_NANOS = 20_000_000_000L;

    /**
     * Options of one run.
     *
     * @param bandwidthBytes size of the buffer for the memory bandwidth measurement (0 = skip it)
     * @param kvCodec        codec of the sequences' KV blocks (float32, as llama.cpp's cache; the
     *                       operator compresses them, int8 by default)
     */
    public record Options(int threads, int batch, int promptTokens, int genTokens, long seed, int bandwidthBytes,
                          KvCodec kvCodec) {

        public Options {
            java.util.Objects.requireNonNull(kvCodec, "kvCodec");
        }

        /** A float32 KV cache. */
        public Options(int threads, int batch, int promptTokens, int genTokens, long seed, int bandwidthBytes) {
            this(threads, batch, promptTokens, genTokens, seed, bandwidthBytes, KvCodec.F32);
        }

        /** Defaults: seed 1, a 512 MiB bandwidth buffer, a float32 KV cache. */
        public Options(int threads, int batch, int promptTokens, int genTokens) {
            this(threads, batch, promptTokens, genTokens, 1, 512 << 20);
        }
    }

    /** Figures of one run. */
    public record Result(
            String model,
            String kernels,
            String kvCodec,
            int threads,
            int batch,
            int promptTokens,
            int genTokens,
            double prefillSeconds,
            double decodeSeconds,
            double prefillTokensPerSecond,
            double decodeTokensPerSecond,
            long bytesPerToken,
            double memoryGBs,
            double decodeCpuSeconds,
            double loadAverage,
            double warmUpSeconds,
            boolean jitQuiet) {

        /** Decode throughput this bandwidth would allow if every token read its weights once. */
        public double decodeCeilingTokensPerSecond() {
            return memoryGBs * 1e9 / bytesPerToken;
        }

        /** One-line JSON object (unmeasured figures are null). */
        public String toJson() {
            return String.format(java.util.Locale.ROOT,
                    "{\"model\":\"%s\",\"kernels\":\"%s\",\"kv_codec\":\"%s\",\"threads\":%d,\"batch\":%d,\"prompt_tokens\":%d,\"gen_tokens\":%d,"
                            + "\"prefill_seconds\":%.3f,\"decode_seconds\":%.3f,\"prefill_tokens_per_s\":%.2f,\"decode_tokens_per_s\":%.2f,"
                            + "\"model_bytes_per_token\":%d,\"memory_read_gb_per_s\":%.1f,\"decode_ceiling_tokens_per_s\":%.1f,"
                            + "\"decode_cpu_seconds\":%.3f,\"load_average_before\":%.2f,\"warm_up_seconds\":%.3f,\"jit_quiet\":%b,"
                            + "\"decode_batched\":true}",
                    model.replace("\\", "\\\\").replace("\"", "\\\""), kernels, kvCodec, threads, batch, promptTokens, genTokens,
                    prefillSeconds, decodeSeconds, prefillTokensPerSecond, decodeTokensPerSecond, bytesPerToken, memoryGBs,
                    decodeCeilingTokensPerSecond(), decodeCpuSeconds, loadAverage, warmUpSeconds, jitQuiet)
                    .replace("NaN", "null");
        }
    }

    private InferenceBenchmark() {}

    /** Runs prefill and decode with {@code o.threads()} matmul threads. */
    public static Result run(Model model, Options o) {
        if (o.batch() < 1 || o.promptTokens() < 1 || o.genTokens() < 1) {
            throw new IllegalArgumentException("batch, prompt tokens and gen tokens must be >= 1");
        }
        if (o.promptTokens() + o.genTokens() > model.contextLength()) {
            throw new IllegalArgumentException("prompt + gen tokens exceed the context length " + model.contextLength());
        }
        MatmulPool.setThreads(o.threads());
        Engine engine = new Engine(model);
        SplittableRandom r = new SplittableRandom(o.seed());

        // warm-up: JIT-compile the kernels (single and batched), then the measured procedure itself on
        // throw-away requests, round after round, until two rounds in a row compiled nothing (a
        // compiler thread busy during the timed decode takes one of the measured threads' cores for
        // milliseconds at a time); for WARM_UP_NANOS where the JIT's compile time cannot be read
        long warmStart = System.nanoTime();
        Kernels.warmUp();
        CompilationMXBean jit = ManagementFactory.getCompilationMXBean();
        boolean monitored = jit != null && jit.isCompilationTimeMonitoringSupported();
        int quiet = 0;
        while (monitored ? quiet < 2 && System.nanoTime() - warmStart < MAX_WARM_UP_NANOS
                : System.nanoTime() - warmStart < WARM_UP_NANOS) {
            long compiled = monitored ? jit.getTotalCompilationTime() : 0;
            List<Request> round = requests(model, o, r);
            prefill(engine, round, o);
            for (int step = 0; step < Math.min(o.genTokens(), WARM_UP_ROUND_TOKENS); step++) {
                step(engine, round, 1);
            }
            quiet = monitored && jit.getTotalCompilationTime() == compiled ? quiet + 1 : 0;
        }

        // the warm-up's throw-away caches collected now rather than by a concurrent cycle while timing
        System.gc();
        double warmUp = (System.nanoTime() - warmStart) / 1e9;
        double load = ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage();
        List<Request> requests = requests(model, o, r);
        long t0 = System.nanoTime();
        prefill(engine, requests, o);
        long t1 = System.nanoTime();
        long cpu1 = processCpuNanos();
        // decode: one batched step per generated token, every sequence in it
        for (int step = 0; step < o.genTokens(); step++) {
            step(engine, requests, 1);
        }
        long t2 = System.nanoTime();
        long cpu2 = processCpuNanos();
        double prefillSec = (t1 - t0) / 1e9;
        double decode = (t2 - t1) / 1e9;
        return new Result(model.name(), Kernels.get().name(), o.kvCodec().toString(), o.threads(), o.batch(), o.promptTokens(), o.genTokens(),
                prefillSec, decode, (double) o.batch() * o.promptTokens() / prefillSec, (double) o.batch() * o.genTokens() / decode,
                bytesPerToken(model), o.bandwidthBytes() > 0 ? memoryReadGBs(o.threads(), o.bandwidthBytes()) : Double.NaN,
                cpu1 < 0 ? Double.NaN : (cpu2 - cpu1) / 1e9, load, warmUp, quiet >= 2);
    }

    /**
     * The batch's requests, through the shared request lifecycle (greedy, EOS not ending them):
     * random prompts of {@code o.promptTokens()} ids, {@code o.genTokens()} tokens to generate.
     */
    private static List<Request> requests(Model model, Options o, SplittableRandom r) {
        int vocab = model.config().vocabSize();
        List<Request> requests = new ArrayList<>();
        for (int s = 0; s < o.batch(); s++) {
            int[] prompt = randomPrompt(r, o.promptTokens(), model.tokenizer().bosId(), Math.min(vocab, 766));
            requests.add(Request.generate("", new GenerationRequest(model.newCache(o.kvCodec()), prompt,
                    SamplingParams.greedy(o.genTokens() + 1), false), model.tokenizer()).ignoreEos());
        }
        return requests;
    }

    /** Prefills every prompt, whole prompts in batched steps of at most {@link #PREFILL_STEP_TOKENS} rows. */
    private static void prefill(Engine engine, List<Request> requests, Options o) {
        int perStep = Math.max(1, PREFILL_STEP_TOKENS / o.promptTokens());
        for (int from = 0; from < requests.size(); from += perStep) {
            step(engine, requests.subList(from, Math.min(requests.size(), from + perStep)), o.promptTokens());
        }
    }

    /** One step of {@code n} tokens for each request: its chunk, then its sample. */
    private static void step(Engine engine, List<Request> requests, int n) {
        List<StepPlan.Sequence> plan = new ArrayList<>(requests.size());
        for (Request q : requests) {
            plan.add(q.chunk(n));
        }
        StepResult res = engine.step(new StepPlan(plan));
        for (int i = 0; i < requests.size(); i++) {
            requests.get(i).computed(n, res.logits(i), 0);
        }
    }

    /** CPU time of this process (all threads), or -1 where the JVM does not report it. */
    private static long processCpuNanos() {
        if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
            return os.getProcessCpuTime();
        }
        return -1;
    }

    /** BOS, then {@code length - 1} ids drawn below {@code bound}. */
    private static int[] randomPrompt(SplittableRandom r, int length, int bos, int bound) {
        int[] prompt = new int[length];
        prompt[0] = bos;
        for (int i = 1; i < length; i++) {
            prompt[i] = r.nextInt(bound);
        }
        return prompt;
    }

    /**
     * Weight bytes one decoded token reads: every attention and dense matrix, the router, the
     * output head, {@code expertsUsed / experts} of each expert tensor, one embedding row and the
     * norms (the KV cache is left out: small at benchmark context lengths).
     */
    public static long bytesPerToken(Model model) {
        ModelConfig c = model.config();
        double bytes = 0;
        boolean tied = true;
        for (GgufTensor t : model.gguf().tensors().values()) {
            String n = t.name();
            double b = t.bytes().capacity();
            if (n.equals("token_embd.weight")) {
                bytes += b / c.vocabSize();
            } else if (n.contains("_exps.")) {
                bytes += b * c.expertsUsed() / c.experts();
            } else {
                if (n.equals("output.weight")) {
                    tied = false;
                }
                bytes += b;
            }
        }
        if (tied) {
            bytes += model.gguf().tensors().get("token_embd.weight").bytes().capacity();
        }
        return Math.round(bytes);
    }

    /**
     * STREAM-like read bandwidth: {@code threads} threads each sum the longs of their share of a
     * heap array of {@code size} bytes (use several times the last-level cache), best of 5 passes,
     * in GB/s: four independent sums per thread, so the loads rather than the adds set the pace,
     * as in STREAM's C (a loop of {@code LongBuffer.get} calls measured the loop instead).
     */
    public static double memoryReadGBs(int threads, int size) {
        long[] longs = new long[size / 8];
        for (int i = 0; i < longs.length; i++) {
            longs[i] = i;
        }
        int n = longs.length;
        int chunks = threads * 16;
        AtomicLong sink = new AtomicLong();
        double best = 0;
        MatmulPool pool = MatmulPool.get();
        for (int pass = 0; pass < 5; pass++) {
            long t0 = System.nanoTime();
            pool.run(chunks, c -> {
                int from = (int) ((long) n * c / chunks);
                int to = (int) ((long) n * (c + 1) / chunks);
                long s0 = 0;
                long s1 = 0;
                long s2 = 0;
                long s3 = 0;
                int i = from;
                for (; i + 3 < to; i += 4) {
                    s0 += longs[i];
                    s1 += longs[i + 1];
                    s2 += longs[i + 2];
                    s3 += longs[i + 3];
                }
                for (; i < to; i++) {
                    s0 += longs[i];
                }
                sink.addAndGet(s0 + s1 + s2 + s3);
            });
            double sec = (System.nanoTime() - t0) / 1e9;
            best = Math.max(best, (double) n * 8 / sec / 1e9);
        }
        if (sink.get() == 42) {
            System.out.print("");
        }
        return best;
    }
}
