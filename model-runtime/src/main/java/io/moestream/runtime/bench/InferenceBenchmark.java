package io.moestream.runtime.bench;

import io.moestream.runtime.gguf.GgufTensor;
import io.moestream.runtime.kernel.Kernels;
import io.moestream.runtime.kernel.MatmulPool;
import io.moestream.runtime.model.Engine;
import io.moestream.runtime.model.KvCache;
import io.moestream.runtime.model.Model;
import io.moestream.runtime.model.ModelConfig;

import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Prefill and decode throughput of a model, as llama-bench / llama-batched-bench measure it: B
 * sequences each prefill P random prompt tokens, then decode G tokens each in lockstep (every step
 * feeds one token per sequence). Throughputs are aggregates over the batch. Also measures the
 * machine's memory read bandwidth and the weight bytes one decoded token must read, so a figure can
 * be set against its bandwidth ceiling.
 *
 * <p>Batching: decode steps call {@link Engine#forward} once per sequence (the engine has no batched
 * step yet), so batch B reads the weights B times per step ({@code decode_batched: false}). For
 * B > 1 the result adds {@link #batchedStepMatmulTokensPerSecond}: the matrix products of G batched
 * decode steps, what a batched engine step would cost without attention.
 *
 * <p>Load: the 1-minute load average before the run and the process CPU seconds spent decoding are
 * reported; on a shared machine {@code decode_cpu_seconds < threads * decode_seconds} means the
 * threads were descheduled part of the time.
 */
public final class InferenceBenchmark {

    /**
     * Options of one run.
     *
     * @param bandwidthBytes size of the buffer for the memory bandwidth measurement (0 = skip it)
     */
    public record Options(int threads, int batch, int promptTokens, int genTokens, long seed, int bandwidthBytes) {

        /** Defaults: seed 1, a 512 MiB bandwidth buffer. */
        public Options(int threads, int batch, int promptTokens, int genTokens) {
            this(threads, batch, promptTokens, genTokens, 1, 512 << 20);
        }
    }

    /** Figures of one run. */
    public record Result(
            String model,
            String kernels,
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
            double batchedStepMatmulTokensPerSecond) {

        /** Decode throughput this bandwidth would allow if every token read its weights once. */
        public double decodeCeilingTokensPerSecond() {
            return memoryGBs * 1e9 / bytesPerToken;
        }

        /** One-line JSON object (unmeasured figures are null). */
        public String toJson() {
            return String.format(java.util.Locale.ROOT,
                    "{\"model\":\"%s\",\"kernels\":\"%s\",\"threads\":%d,\"batch\":%d,\"prompt_tokens\":%d,\"gen_tokens\":%d,"
                            + "\"prefill_seconds\":%.3f,\"decode_seconds\":%.3f,\"prefill_tokens_per_s\":%.2f,\"decode_tokens_per_s\":%.2f,"
                            + "\"model_bytes_per_token\":%d,\"memory_read_gb_per_s\":%.1f,\"decode_ceiling_tokens_per_s\":%.1f,"
                            + "\"decode_cpu_seconds\":%.3f,\"load_average_before\":%.2f,\"decode_batched\":false,"
                            + "\"batched_step_matmul_tokens_per_s\":%.2f}",
                    model.replace("\\", "\\\\").replace("\"", "\\\""), kernels, threads, batch, promptTokens, genTokens,
                    prefillSeconds, decodeSeconds, prefillTokensPerSecond, decodeTokensPerSecond, bytesPerToken, memoryGBs,
                    decodeCeilingTokensPerSecond(), decodeCpuSeconds, loadAverage, batchedStepMatmulTokensPerSecond)
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
        int vocab = model.config().vocabSize();
        int bos = model.tokenizer().bosId();

        // warm-up: JIT-compile the kernels on a throw-away sequence
        KvCache warm = model.newCache();
        engine.forward(warm, new int[] {bos, 1, 2, 3});
        for (int i = 0; i < 16; i++) {
            engine.forward(warm, new int[] {r.nextInt(256)});
        }

        double load = ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage();
        KvCache[] caches = new KvCache[o.batch()];
        int[] next = new int[o.batch()];
        long t0 = System.nanoTime();
        for (int s = 0; s < o.batch(); s++) {
            int[] prompt = new int[o.promptTokens()];
            prompt[0] = bos;
            for (int i = 1; i < prompt.length; i++) {
                prompt[i] = r.nextInt(Math.min(vocab, 766));
            }
            caches[s] = model.newCache();
            next[s] = argmax(engine.forward(caches[s], prompt));
        }
        long t1 = System.nanoTime();
        long cpu1 = processCpuNanos();
        for (int step = 0; step < o.genTokens(); step++) {
            for (int s = 0; s < o.batch(); s++) {
                next[s] = argmax(engine.forward(caches[s], new int[] {next[s]}));
            }
        }
        long t2 = System.nanoTime();
        long cpu2 = processCpuNanos();
        double prefill = (t1 - t0) / 1e9;
        double decode = (t2 - t1) / 1e9;
        return new Result(model.name(), Kernels.get().name(), o.threads(), o.batch(), o.promptTokens(), o.genTokens(),
                prefill, decode, (double) o.batch() * o.promptTokens() / prefill, (double) o.batch() * o.genTokens() / decode,
                bytesPerToken(model), o.bandwidthBytes() > 0 ? memoryReadGBs(o.threads(), o.bandwidthBytes()) : Double.NaN,
                cpu1 < 0 ? Double.NaN : (cpu2 - cpu1) / 1e9, load,
                o.batch() > 1 ? batchedStepMatmulTokensPerSecond(model, o.threads(), o.batch(), o.genTokens(), o.seed()) : Double.NaN);
    }

    /** CPU time of this process (all threads), or -1 where the JVM does not report it. */
    private static long processCpuNanos() {
        if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
            return os.getProcessCpuTime();
        }
        return -1;
    }

    /**
     * Aggregate tokens/s of the weight matrix products of batched decode steps, without attention:
     * per step and layer, q/k/v/o with all {@code batch} activations at once, each expert with the
     * tokens routed to it (top-k of uniformly random scores, as a random model's router is close to),
     * and the output head; every matrix row is read once per step for all its tokens. This is what
     * {@link io.moestream.runtime.model.WeightMatrix#matmul(float[][], float[][], int)} gives a
     * batched engine step; attention at short contexts adds a few percent.
     */
    public static double batchedStepMatmulTokensPerSecond(Model model, int threads, int batch, int steps, long seed) {
        MatmulPool.setThreads(threads);
        ModelConfig c = model.config();
        java.util.Map<String, GgufTensor> t = model.gguf().tensors();
        SplittableRandom r = new SplittableRandom(seed);
        float[][] x = new float[batch][];
        float[][] wide = new float[batch][];
        float[][] logits = new float[batch][c.vocabSize()];
        for (int i = 0; i < batch; i++) {
            x[i] = new float[Math.max(c.dim(), c.qDim())];
            wide[i] = new float[Math.max(Math.max(c.qDim(), c.expertDim()), Math.max(c.dim(), c.ffnDim()))];
            for (int j = 0; j < x[i].length; j++) {
                x[i][j] = (float) r.nextGaussian();
            }
        }
        try {
            io.moestream.runtime.model.WeightMatrix output = io.moestream.runtime.model.WeightMatrix.of(
                    t.containsKey("output.weight") ? t.get("output.weight") : t.get("token_embd.weight"));
            long start = 0;
            for (int step = -2; step < steps; step++) { // two warm-up steps
                if (step == 0) {
                    start = System.nanoTime();
                }
                for (int l = 0; l < c.layers(); l++) {
                    String b = "blk." + l + ".";
                    for (String m : new String[] {"attn_q", "attn_k", "attn_v", "attn_output"}) {
                        io.moestream.runtime.model.WeightMatrix.of(t.get(b + m + ".weight")).matmul(x, wide, batch);
                    }
                    if (c.isMoe()) {
                        io.moestream.runtime.model.WeightMatrix[] gate = io.moestream.runtime.model.WeightMatrix.experts(t.get(b + "ffn_gate_exps.weight"));
                        io.moestream.runtime.model.WeightMatrix[] up = io.moestream.runtime.model.WeightMatrix.experts(t.get(b + "ffn_up_exps.weight"));
                        io.moestream.runtime.model.WeightMatrix[] down = io.moestream.runtime.model.WeightMatrix.experts(t.get(b + "ffn_down_exps.weight"));
                        int[][] routed = route(batch, c.experts(), c.expertsUsed(), r);
                        for (int e = 0; e < c.experts(); e++) {
                            int n = routed[e].length;
                            if (n == 0) {
                                continue;
                            }
                            float[][] xs = new float[n][];
                            float[][] hs = new float[n][];
                            for (int i = 0; i < n; i++) {
                                xs[i] = x[routed[e][i]];
                                hs[i] = wide[routed[e][i]];
                            }
                            gate[e].matmul(xs, hs, n);
                            up[e].matmul(xs, hs, n);
                            down[e].matmul(hs, xs, n);
                        }
                    } else {
                        io.moestream.runtime.model.WeightMatrix.of(t.get(b + "ffn_gate.weight")).matmul(x, wide, batch);
                        io.moestream.runtime.model.WeightMatrix.of(t.get(b + "ffn_up.weight")).matmul(x, wide, batch);
                        io.moestream.runtime.model.WeightMatrix.of(t.get(b + "ffn_down.weight")).matmul(wide, x, batch);
                    }
                }
                output.matmul(x, logits, batch);
                for (float[] xi : x) { // keep activations bounded and nonzero
                    for (int j = 0; j < xi.length; j++) {
                        xi[j] = (float) Math.tanh(xi[j]) + 0.01f;
                    }
                }
            }
            return (double) batch * steps / ((System.nanoTime() - start) / 1e9);
        } catch (io.moestream.runtime.gguf.GgufFormatException e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        }
    }

    /** For each expert, the tokens whose top-k of uniformly random scores include it. */
    private static int[][] route(int batch, int experts, int used, SplittableRandom r) {
        int[] counts = new int[experts];
        int[][] chosen = new int[batch][used];
        for (int i = 0; i < batch; i++) {
            double[] score = new double[experts];
            for (int e = 0; e < experts; e++) {
                score[e] = r.nextDouble();
            }
            for (int k = 0; k < used; k++) {
                int best = -1;
                for (int e = 0; e < experts; e++) {
                    if (score[e] >= 0 && (best < 0 || score[e] > score[best])) {
                        best = e;
                    }
                }
                score[best] = -1;
                chosen[i][k] = best;
                counts[best]++;
            }
        }
        int[][] out = new int[experts][];
        for (int e = 0; e < experts; e++) {
            out[e] = new int[counts[e]];
            counts[e] = 0;
        }
        for (int i = 0; i < batch; i++) {
            for (int e : chosen[i]) {
                out[e][counts[e]++] = i;
            }
        }
        return out;
    }

    private static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
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
     * direct buffer of {@code size} bytes (use several times the last-level cache), best of 5
     * passes, in GB/s. (Reading with plain Java long loads; the
     * JIT vectorises the sum.)
     */
    public static double memoryReadGBs(int threads, int size) {
        ByteBuffer buf = ByteBuffer.allocateDirect(size).order(java.nio.ByteOrder.nativeOrder());
        for (int i = 0; i < size; i += 8) {
            buf.putLong(i, i);
        }
        java.nio.LongBuffer longs = buf.asLongBuffer();
        int n = longs.capacity();
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
                int i = from;
                for (; i + 1 < to; i += 2) {
                    s0 += longs.get(i);
                    s1 += longs.get(i + 1);
                }
                sink.addAndGet(s0 + s1);
            });
            double sec = (System.nanoTime() - t0) / 1e9;
            best = Math.max(best, size / sec / 1e9);
        }
        if (sink.get() == 42) {
            System.out.print("");
        }
        return best;
    }
}
