package io.moestream.cuda;

import static jcuda.driver.JCudaDriver.cuEventCreate;
import static jcuda.driver.JCudaDriver.cuEventElapsedTime;
import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuEventSynchronize;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoD;

import io.moestream.runtime.backend.BackendForward;
import io.moestream.runtime.gguf.GgmlType;
import io.moestream.runtime.gguf.GgufTensor;
import io.moestream.runtime.kv.KvCodec;
import io.moestream.runtime.model.Model;
import io.moestream.runtime.model.ModelConfig;
import io.moestream.runtime.synthetic.SyntheticModels;
import io.moestream.runtime.synthetic.SyntheticSpec;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;

import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;

/**
 * Decode and prefill throughput of the CUDA backend on a generated MoE model of at least
 * {@code --gb} GB, against the measured device-copy bandwidth: for each batch size, bytes moved per
 * step (weights read once per step: attention, output head, the experts the batch touches; plus
 * the KV read) divided by the step time, as a fraction of what {@code cuMemcpyDtoD} achieves.
 *
 * <p>usage: {@code DeviceBench [--out DIR] [--model FILE] [--gb 4] [--type Q8_0] [--device 0]}
 */
public final class DeviceBench {

    private DeviceBench() {}

    public static void main(String[] args) throws IOException {
        Path out = Path.of(System.getenv().getOrDefault("OUT", "device-bench-out"));
        Path modelPath = null;
        double gb = 4.0;
        GgmlType type = GgmlType.Q8_0;
        int device = 0;
        for (int i = 0; i < args.length; i += 2) {
            switch (args[i]) {
                case "--out" -> out = Path.of(args[i + 1]);
                case "--model" -> modelPath = Path.of(args[i + 1]);
                case "--gb" -> gb = Double.parseDouble(args[i + 1]);
                case "--type" -> type = GgmlType.valueOf(args[i + 1].toUpperCase(Locale.ROOT));
                case "--device" -> device = Integer.parseInt(args[i + 1]);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        Files.createDirectories(out);
        if (modelPath == null) {
            modelPath = Path.of(System.getProperty("java.io.tmpdir"), "moestream-bench-" + type + "-" + gb + "gb.gguf");
        }
        if (!Files.exists(modelPath)) {
            SyntheticSpec spec = spec(gb, type);
            long t0 = System.nanoTime();
            SyntheticModels.write(spec, type, modelPath);
            System.out.printf("generated %s (%s, %d layers, %.2f GB) in %.0f s%n", modelPath, type, spec.layers(),
                    Files.size(modelPath) / 1e9, (System.nanoTime() - t0) / 1e9);
        }

        List<String> report = new ArrayList<>();
        try (CudaBackend cuda = new CudaBackend(device); Model model = Model.load(modelPath)) {
            double copyGBs = copyBandwidth();
            ModelConfig c = model.config();
            Bytes bytes = Bytes.of(model);
            report.add("# moestream CUDA device bench");
            report.add("");
            report.add("device: " + cuda.name());
            report.add(String.format("model: %s, %.2f GB on disk, %s, dim %d, %d layers, %d experts (top-%d)", modelPath.getFileName(),
                    Files.size(modelPath) / 1e9, bytes.type, c.dim(), c.layers(), c.experts(), c.expertsUsed()));
            report.add(String.format("measured device copy bandwidth (cuMemcpyDtoD, read + write): %.0f GB/s", copyGBs));
            report.add("");

            int prompt = 128;
            int steps = 32;
            int[] batches = {1, 8, 64};
            BackendForward.Options o = new BackendForward.Options(64, 64 * ((prompt + steps + 8 + 15) / 16) + 16, 16, KvCodec.F32,
                    BackendForward.Options.openBlocksFor(64, 64, 16));
            try (BackendForward f = new BackendForward(model, cuda, o)) {
                report.add(String.format("weights resident on the device: %.2f GB", cuda.residentWeightBytes() / 1e9));
                report.add("");
                // prefill: one 512-token prompt, as passes of 64 rows
                BackendForward.Sequence warm = f.newSequence();
                f.forward(warm, tokens(64, 1, c));
                f.release(warm);
                BackendForward.Sequence s = f.newSequence();
                int[] long512 = tokens(512, 2, c);
                long t0 = System.nanoTime();
                f.forward(s, long512);
                double prefillS = (System.nanoTime() - t0) / 1e9;
                f.release(s);
                report.add(String.format("prefill: 512 tokens in %.1f ms = %.0f tokens/s", prefillS * 1e3, 512 / prefillS));
                report.add("");
                report.add("| batch | ms / step | tokens/s | MB moved / step | achieved GB/s | of copy bandwidth |");
                report.add("|---|---|---|---|---|---|");
                for (int batch : batches) {
                    List<BackendForward.Sequence> seqs = new ArrayList<>();
                    List<BackendForward.Chunk> chunks = new ArrayList<>();
                    for (int b = 0; b < batch; b++) {
                        BackendForward.Sequence q = f.newSequence();
                        seqs.add(q);
                        f.forward(q, tokens(prompt, 10 + b, c));
                    }
                    Random r = new Random(batch);
                    for (int i = 0; i < 4; i++) {
                        f.step(decodeChunks(seqs, chunks, r, c));
                    }
                    long d0 = System.nanoTime();
                    for (int i = 0; i < steps; i++) {
                        f.step(decodeChunks(seqs, chunks, r, c));
                    }
                    double stepS = (System.nanoTime() - d0) / 1e9 / steps;
                    int ctx = prompt + 4 + steps / 2;
                    double moved = bytes.perStep(batch, ctx, c);
                    double gbs = moved / stepS / 1e9;
                    report.add(String.format("| %d | %.3f | %.0f | %.1f | %.0f | %.0f %% |", batch, stepS * 1e3, batch / stepS, moved / 1e6,
                            gbs, 100 * gbs / copyGBs));
                    for (BackendForward.Sequence q : seqs) {
                        f.release(q);
                    }
                }
            }
            report.add("");
            report.add("MB moved / step = weights read once per step (attention, router, output head, embedding rows, and the");
            report.add("experts the batch can touch: min(E, batch*k) of E) + the KV read of every sequence; target on an");
            report.add("H200: batch 1 at >= 60 % of the measured copy bandwidth.");
        }
        String text = String.join("\n", report) + "\n";
        System.out.print(text);
        Files.writeString(out.resolve("bench.md"), text);
    }

    /** A Mixtral-shaped spec (dim 4096, 8 experts of width 4096, top-2) with enough layers for {@code gb}. */
    static SyntheticSpec spec(double gb, GgmlType type) {
        SyntheticSpec one = new SyntheticSpec("bench-cuda", 4096, 1, 32, 8, 128, 4096, 8, 2, 4096, 1e6f, 3f, 42);
        double bytesPerParam = type.blockBytes() / (double) type.blockSize();
        long perLayer = one.parameters() - 2L * SyntheticModels.VOCAB_SIZE * one.dim();
        int layers = (int) Math.ceil(gb * 1e9 / (perLayer * bytesPerParam));
        return new SyntheticSpec("bench-cuda", 4096, layers, 32, 8, 128, 4096, 8, 2, 4096, 1e6f, 3f, 42);
    }

    static int[] tokens(int n, long seed, ModelConfig c) {
        Random r = new Random(seed);
        int[] t = new int[n];
        for (int i = 0; i < n; i++) {
            t[i] = r.nextInt(c.vocabSize() - 2);
        }
        return t;
    }

    static List<BackendForward.Chunk> decodeChunks(List<BackendForward.Sequence> seqs, List<BackendForward.Chunk> chunks, Random r,
                                                   ModelConfig c) {
        chunks.clear();
        for (BackendForward.Sequence s : seqs) {
            chunks.add(new BackendForward.Chunk(s, new int[] {r.nextInt(c.vocabSize() - 2)}));
        }
        return chunks;
    }

    /** GB/s of a 1 GiB device-to-device copy (bytes read + bytes written), best of 5. */
    static double copyBandwidth() {
        long n = 1L << 30;
        CUdeviceptr a = new CUdeviceptr();
        CUdeviceptr b = new CUdeviceptr();
        cuMemAlloc(a, n);
        cuMemAlloc(b, n);
        CUevent start = new CUevent();
        CUevent stop = new CUevent();
        cuEventCreate(start, 0);
        cuEventCreate(stop, 0);
        float best = Float.MAX_VALUE;
        for (int i = 0; i < 6; i++) {
            cuEventRecord(start, null);
            cuMemcpyDtoD(b, a, n);
            cuEventRecord(stop, null);
            cuEventSynchronize(stop);
            float[] ms = {0};
            cuEventElapsedTime(ms, start, stop);
            if (i > 0) {
                best = Math.min(best, ms[0]);
            }
        }
        cuMemFree(a);
        cuMemFree(b);
        return 2.0 * n / (best / 1e3) / 1e9;
    }

    /** Weight bytes by role, to count what a decode step reads. */
    record Bytes(String type, long dense, long experts, long embeddingRow) {

        static Bytes of(Model m) {
            long dense = 0;
            long experts = 0;
            String type = "";
            for (GgufTensor t : m.gguf().tensors().values()) {
                long size = t.type().bytesFor(t.elementCount());
                if (t.name().contains("_exps")) {
                    experts += size;
                    type = t.type().toString();
                } else if (!t.name().equals("token_embd.weight")) {
                    dense += size;
                }
            }
            GgufTensor embd = m.gguf().tensors().get("token_embd.weight");
            return new Bytes(type, dense, experts, embd.type().bytesFor(embd.ne()[0]));
        }

        /** Bytes one decode step of {@code batch} sequences at {@code ctx} positions reads. */
        double perStep(int batch, int ctx, ModelConfig c) {
            double touched = c.experts() == 0 ? 0 : Math.min(c.experts(), batch * c.expertsUsed()) / (double) c.experts();
            double kv = 2.0 * c.layers() * ctx * c.kvDim() * Float.BYTES * batch;
            return dense + touched * experts + batch * embeddingRow + kv;
        }
    }
}
