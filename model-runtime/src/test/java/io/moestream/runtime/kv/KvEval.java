package io.moestream.runtime.kv;

import io.moestream.runtime.model.Engine;
import io.moestream.runtime.model.KvCache;
import io.moestream.runtime.model.Model;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Measures the compressed cache on a real model and document: for each setting (codec, with or
 * without head pruning) it prefills the first {@code prefill} tokens of the document into a fresh
 * cache (the prefill itself reads the compressed blocks, and the {@link HeadClassifier} observes it
 * when pruning), then
 * <ul>
 *   <li>teacher-forces the rest of the document and compares the logits at every position with an
 *       uncompressed (F32, no pruning) run: top-1 agreement and KL(reference || setting);
 *   <li>greedy-decodes {@code gen} tokens after the prefill and counts how many agree with the
 *       reference greedy tokens before the first divergence;
 *   <li>reports state bytes per token (metadata, block headers and checksums included) against an
 *       fp16 cache ({@code 2 bytes x 2 (K,V) x layers x kvDim}), and the K/V bytes attention read per
 *       decoded token against fp16.
 * </ul>
 *
 * <p>{@code main}: {@code KvEval [--model file.gguf] [--doc text-file] [--prefill N] [--gen N]
 * [--sink S] [--window W] [--fraction F] [--codecs f32,f16,int8,int4]}; prints a Markdown table.
 * Defaults: the bundled model ({@link Model#loadDefault()}), prefill 1024, gen 32, S 4, W 256, F 0.5.
 */
public final class KvEval {

    /** One configuration to measure. */
    public record Setting(KvCodec codec, boolean prune, double streamingFraction) {
        public Setting(KvCodec codec, boolean prune) {
            this(codec, prune, -1);
        }

        @Override
        public String toString() {
            return codec + (prune ? " + pruning" + (streamingFraction >= 0 ? String.format(Locale.ROOT, " %.3g", streamingFraction) : "") : "");
        }
    }

    /** Parameters of the run. */
    public record Params(int prefill, int gen, int blockTokens, int sink, int window, double streamingFraction, double maxOutsideMass) {}

    /** Measured figures of one setting. */
    public record Row(Setting setting, String policy, double[] headScores, int streamingHeads, int length, long stateBytes, double bytesPerToken,
                      double ratioVsFp16, double attnBytesPerStep, double attnRatioVsFp16, double top1Agreement, double meanKl,
                      double maxKl, int greedyPrefix, int greedyTotal) {}

    private KvEval() {}

    public static List<Row> evaluate(Model model, int[] doc, Params p, List<Setting> settings) throws IOException {
        if (doc.length <= p.prefill()) {
            throw new IllegalArgumentException("document of " + doc.length + " tokens is not longer than the prefill " + p.prefill());
        }
        Engine f = new Engine(model);
        int[] prefix = java.util.Arrays.copyOf(doc, p.prefill());
        int[] rest = java.util.Arrays.copyOfRange(doc, p.prefill(), doc.length);

        // reference: F32, no pruning
        KvCache ref = model.newCache(KvCodec.F32, p.blockTokens());
        float[] refLast = f.forward(ref, prefix);
        int[] refGreedy = greedy(f, ref.copy(), refLast, p.gen());
        float[][] refLogits = teacherForce(f, ref, rest);

        KvShape shape = model.kvShape();
        long fp16PerToken = 2L * 2 * shape.layers() * shape.kvDim();
        int heads = model.config().heads();
        int group = heads / model.config().kvHeads();

        List<Row> rows = new ArrayList<>();
        for (Setting s : settings) {
            KvCache c = model.newCache(s.codec(), p.blockTokens());
            if (s.prune()) {
                c.startHeadClassification(p.sink(), p.window(), model.config());
            }
            double[] scores = null;
            float[] last = f.forward(c, prefix);
            if (s.prune()) {
                scores = c.headClassifier().scores();
                double fr = s.streamingFraction() >= 0 ? s.streamingFraction() : p.streamingFraction();
                c.applyHeadClassification(fr, p.maxOutsideMass());
            }
            // greedy from the prefill, on a copy; count attention bytes per step
            f.resetKvBytesRead();
            int[] g = greedy(f, c.copy(), last, p.gen());
            // gen - 1 decode steps; step i is the query at position prefill + i, which sees prefill + i + 1 positions
            int steps = Math.max(1, p.gen() - 1);
            double attnPerStep = f.kvBytesRead() / (double) group / steps;
            double fp16AttnPerStep = 0;
            for (int i = 0; i < steps; i++) {
                fp16AttnPerStep += (double) (p.prefill() + i + 1) * fp16PerToken;
            }
            fp16AttnPerStep /= steps;
            int prefixLen = 0;
            while (prefixLen < g.length && g[prefixLen] == refGreedy[prefixLen]) {
                prefixLen++;
            }
            // teacher-forced continuation of the document
            float[][] logits = teacherForce(f, c, rest);
            int agree = 0;
            double klSum = 0;
            double klMax = 0;
            for (int i = 0; i < rest.length; i++) {
                agree += argmax(logits[i]) == argmax(refLogits[i]) ? 1 : 0;
                double kl = kl(refLogits[i], logits[i]);
                klSum += kl;
                klMax = Math.max(klMax, kl);
            }
            PagedKvCache pc = c.paged();
            long bytes = pc.stateBytes();
            rows.add(new Row(s, pc.policy().toString(), scores, pc.policy().streamingCount(), c.length(), bytes,
                    bytes / (double) c.length(), bytes / (double) (c.length() * fp16PerToken), attnPerStep,
                    attnPerStep / fp16AttnPerStep, agree / (double) rest.length, klSum / rest.length, klMax, prefixLen, p.gen()));
        }
        return rows;
    }

    /** The logits after each of {@code tokens}, fed one at a time. */
    static float[][] teacherForce(Engine f, KvCache cache, int[] tokens) {
        float[][] out = new float[tokens.length][];
        for (int i = 0; i < tokens.length; i++) {
            out[i] = f.forward(cache, new int[] {tokens[i]});
        }
        return out;
    }

    static int[] greedy(Engine f, KvCache cache, float[] logits, int n) {
        int[] out = new int[n];
        float[] l = logits;
        for (int i = 0; i < n; i++) {
            out[i] = argmax(l);
            if (i < n - 1) {
                l = f.forward(cache, new int[] {out[i]});
            }
        }
        return out;
    }

    static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }

    /** KL(softmax(p) || softmax(q)) in nats. */
    static double kl(float[] p, float[] q) {
        double mp = Double.NEGATIVE_INFINITY;
        double mq = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < p.length; i++) {
            mp = Math.max(mp, p[i]);
            mq = Math.max(mq, q[i]);
        }
        double zp = 0;
        double zq = 0;
        for (int i = 0; i < p.length; i++) {
            zp += Math.exp(p[i] - mp);
            zq += Math.exp(q[i] - mq);
        }
        double lzp = Math.log(zp);
        double lzq = Math.log(zq);
        double kl = 0;
        for (int i = 0; i < p.length; i++) {
            double lp = p[i] - mp - lzp;
            double lq = q[i] - mq - lzq;
            kl += Math.exp(lp) * (lp - lq);
        }
        return Math.max(0, kl);
    }

    /** The table as Markdown. */
    public static String table(List<Row> rows, Params p) {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "prefill %d tokens, teacher-forced continuation to %d tokens, greedy %d; B=%d, S=%d, W=%d, "
                + "streaming budget %.2f of KV heads%n%n", p.prefill(), rows.isEmpty() ? 0 : rows.get(0).length(), p.gen(),
                p.blockTokens(), p.sink(), p.window(), p.streamingFraction()));
        sb.append("| setting | streaming heads | state bytes/token | vs fp16 | attn bytes/step vs fp16 | top-1 agree | mean KL | max KL | greedy prefix |\n");
        sb.append("|---|---|---|---|---|---|---|---|---|\n");
        for (Row r : rows) {
            sb.append(String.format(Locale.ROOT, "| %s | %d | %.1f | %.3f | %.3f | %.4f | %.2e | %.2e | %d/%d |%n", r.setting(),
                    r.streamingHeads(), r.bytesPerToken(), r.ratioVsFp16(), r.attnRatioVsFp16(), r.top1Agreement(), r.meanKl(),
                    r.maxKl(), r.greedyPrefix(), r.greedyTotal()));
        }
        for (Row r : rows) {
            if (r.setting().prune()) {
                sb.append("\npolicy (").append(r.setting()).append("): ").append(r.policy()).append("; outside mass per KV head:");
                for (double d : r.headScores()) {
                    sb.append(String.format(Locale.ROOT, " %.3f", d));
                }
            }
        }
        return sb.append('\n').toString();
    }

    public static void main(String[] args) throws IOException {
        Path modelPath = null;
        Path docPath = null;
        int prefill = 1024;
        int gen = 32;
        int sink = 4;
        int window = 256;
        int blockTokens = PagedKvCache.DEFAULT_BLOCK_TOKENS;
        String fractions = "0.5";
        double maxMass = 1.0;
        String codecs = "f32,f16,int8,int4";
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            String v = i + 1 < args.length ? args[i + 1] : null;
            switch (a) {
                case "--model": modelPath = Path.of(v); i++; break;
                case "--doc": docPath = Path.of(v); i++; break;
                case "--prefill": prefill = Integer.parseInt(v); i++; break;
                case "--gen": gen = Integer.parseInt(v); i++; break;
                case "--sink": sink = Integer.parseInt(v); i++; break;
                case "--window": window = Integer.parseInt(v); i++; break;
                case "--block": blockTokens = Integer.parseInt(v); i++; break;
                case "--fraction": fractions = v; i++; break;
                case "--max-mass": maxMass = Double.parseDouble(v); i++; break;
                case "--codecs": codecs = v; i++; break;
                default: throw new IllegalArgumentException("unknown argument " + a);
            }
        }
        if (docPath == null) {
            throw new IllegalArgumentException("--doc <text file> is required (e.g. model-runtime/src/test/resources/kv/design-faq.txt)");
        }
        try (Model model = modelPath == null ? Model.loadDefault() : Model.load(modelPath)) {
            int[] doc = model.tokenizer().encodePrompt(Files.readString(docPath, StandardCharsets.UTF_8));
            List<Setting> settings = new ArrayList<>();
            for (String c : codecs.split(",")) {
                settings.add(new Setting(KvCodec.parse(c), false));
            }
            String[] fr = fractions.split(",");
            for (String f : fr) {
                for (String c : codecs.split(",")) {
                    settings.add(new Setting(KvCodec.parse(c), true, fr.length > 1 ? Double.parseDouble(f) : -1));
                }
            }
            Params p = new Params(prefill, gen, blockTokens, sink, window, Double.parseDouble(fr[0]), maxMass);
            long t0 = System.nanoTime();
            List<Row> rows = evaluate(model, doc, p, settings);
            System.out.println("model " + model.name() + ", document " + docPath.getFileName() + " (" + doc.length + " tokens)");
            System.out.print(table(rows, p));
            System.out.printf(Locale.ROOT, "(%.1f s)%n", (System.nanoTime() - t0) / 1e9);
        }
    }
}
