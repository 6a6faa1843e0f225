package io.moestream.benchmarks;

import one.profiler.AsyncProfiler;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Collectors;

/**
 * async-profiler over the pipeline's measured window only (started when the clock starts, stopped
 * when the last answer is visible), with native frames: the JNI kernels, RocksDB, libc, the kernel.
 * Writes {@code NAME.collapsed} (one line per stack, {@code [thread];frame;...;frame count}, the
 * input of flame-graph tools) and {@code NAME.txt}: samples by thread, and the inference task
 * thread's and the operator's engine thread's samples by what they were doing.
 */
final class PipelineProfiler {

    /** What the inference task thread's samples are grouped by: first match wins. */
    private static final Map<String, String> OPERATOR_PATHS = new LinkedHashMap<>();

    /** What the operator's engine thread's samples are grouped by: first match wins. */
    private static final Map<String, String> ENGINE_PATHS = new LinkedHashMap<>();

    static {
        OPERATOR_PATHS.put("engine step", "io.moestream.runtime.model.Engine.|StepRunner.");
        OPERATOR_PATHS.put("sampling and detokenizing", "Request.computed|Sequence.sample|sampler.Sampler.");
        OPERATOR_PATHS.put("idle (waiting for input or mail)", "TaskMailboxImpl.take");
        OPERATOR_PATHS.put("checkpoint, sync part (state snapshot, sink pre-commit)", "snapshotState|syncPrepareResources|prepareSnapshotPreBarrier");
        OPERATOR_PATHS.put("sink commit (checkpoint complete)", "notifyCheckpointComplete");
        OPERATOR_PATHS.put("Kafka sink writes", "SinkWriterOperator.processElement");
        OPERATOR_PATHS.put("keyed state reads and writes", "RocksDB|TtlMapState|TtlValueState|TtlListState");
        OPERATOR_PATHS.put("input decode (network, Avro)", "StreamElementSerializer|AvroSerializer|StreamTaskNetworkInput");
        ENGINE_PATHS.put("sampling and detokenizing", "Request.computed|sampler.Sampler.");
        ENGINE_PATHS.put("forward step", "io.moestream.runtime.model.Engine.|StepRunner.");
        ENGINE_PATHS.put("handing the step back (mail)", "MailboxExecutor|TaskMailbox");
        ENGINE_PATHS.put("waiting for the task thread's hand-over of admitted work", "StepLoop.computed;java.util.concurrent.LinkedBlockingQueue.take");
        ENGINE_PATHS.put("idle (no step launched)", "ThreadPoolExecutor.getTask");
    }

    private final AsyncProfiler profiler;
    private final Path out;

    private PipelineProfiler(AsyncProfiler profiler, Path out) {
        this.profiler = profiler;
        this.out = out;
    }

    /** Starts sampling {@code event} ({@code cpu}: on-CPU time; {@code wall}: every thread's state); files go to {@code out}.* */
    static PipelineProfiler start(String event, Path out) throws IOException {
        String interval = switch (event) {
            case "cpu" -> "1ms";
            case "wall" -> "5ms";
            default -> throw new IllegalArgumentException("--profile must be cpu, wall or off, got " + event);
        };
        AsyncProfiler profiler = AsyncProfiler.getInstance(library().toString());
        profiler.execute("start,event=" + event + ",interval=" + interval + ",threads");
        return new PipelineProfiler(profiler, out);
    }

    /** Stops sampling and writes the two files. */
    void stop() throws IOException {
        profiler.execute("stop");
        Path collapsed = Path.of(out + ".collapsed");
        profiler.execute("collapsed,file=" + collapsed.toAbsolutePath());
        Files.writeString(Path.of(out + ".txt"), summary(Files.readAllLines(collapsed)));
    }

    static String summary(List<String> collapsed) {
        Map<String, Long> byThread = new TreeMap<>();
        Map<String, Long> operator = new LinkedHashMap<>();
        OPERATOR_PATHS.keySet().forEach(k -> operator.put(k, 0L));
        operator.put("other", 0L);
        Map<String, Long> engine = new LinkedHashMap<>();
        ENGINE_PATHS.keySet().forEach(k -> engine.put(k, 0L));
        engine.put("other", 0L);
        long total = 0;
        long operatorTotal = 0;
        long engineTotal = 0;
        for (String line : collapsed) {
            int space = line.lastIndexOf(' ');
            if (space < 0) {
                continue;
            }
            long n = Long.parseLong(line.substring(space + 1));
            String stack = line.substring(0, space);
            String thread = stack.split(";", 2)[0].replaceAll("tid=\\d+|\\d+", "N");
            byThread.merge(thread, n, Long::sum);
            total += n;
            // the task thread ("inference -> ... (1/1)#0"), not native threads that inherited its name cut to 15 characters (RocksDB's)
            if (thread.startsWith("[inference") && thread.contains("(N/N)#N")) {
                operatorTotal += n;
                operator.merge(category(OPERATOR_PATHS, stack), n, Long::sum);
            } else if (thread.startsWith("[moestream-engine")) {
                engineTotal += n;
                engine.merge(category(ENGINE_PATHS, stack), n, Long::sum);
            }
        }
        StringBuilder s = new StringBuilder();
        s.append(String.format(Locale.ROOT, "samples: %d%n%nby thread (thread numbers as N):%n", total));
        long all = total;
        byThread.entrySet().stream().sorted(Map.Entry.<String, Long>comparingByValue().reversed()).limit(25)
                .forEach(e -> s.append(String.format(Locale.ROOT, "%7d %5.1f%% %s%n", e.getValue(), 100.0 * e.getValue() / all, e.getKey())));
        s.append(String.format(Locale.ROOT, "%ninference task thread, %d samples:%n", operatorTotal));
        s.append(shares(operator, operatorTotal));
        s.append(String.format(Locale.ROOT, "%n%nengine thread (the operator's forward steps), %d samples:%n", engineTotal));
        s.append(shares(engine, engineTotal));
        return s.append(System.lineSeparator()).toString();
    }

    private static String category(Map<String, String> paths, String stack) {
        return paths.entrySet().stream()
                .filter(e -> java.util.regex.Pattern.compile(e.getValue()).matcher(stack).find())
                .map(Map.Entry::getKey).findFirst().orElse("other");
    }

    private static String shares(Map<String, Long> counts, long total) {
        long all = Math.max(1, total);
        return counts.entrySet().stream()
                .map(e -> String.format(Locale.ROOT, "%7d %5.1f%% %s", e.getValue(), 100.0 * e.getValue() / all, e.getKey()))
                .collect(Collectors.joining(System.lineSeparator()));
    }

    /** The bundled libasyncProfiler.so of this platform, copied out of the jar. */
    private static Path library() throws IOException {
        String os = System.getProperty("os.name").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch");
        if (!os.contains("linux")) {
            throw new IllegalStateException("--profile needs Linux (async-profiler's bundled library), this is " + os);
        }
        String resource = "/" + (arch.equals("aarch64") ? "linux-arm64" : "linux-x64") + "/libasyncProfiler.so";
        Path lib = Files.createTempFile("libasyncProfiler", ".so");
        lib.toFile().deleteOnExit();
        try (InputStream in = PipelineProfiler.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new UncheckedIOException(new IOException("no " + resource + " on the class path (tools.profiler:async-profiler)"));
            }
            Files.copy(in, lib, StandardCopyOption.REPLACE_EXISTING);
        }
        return lib;
    }
}
