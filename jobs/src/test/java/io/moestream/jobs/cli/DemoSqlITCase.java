package io.moestream.jobs.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** {@code demo --sql}: the demo's traffic answered through ML_PREDICT and read back from moe.generations. */
class DemoSqlITCase {

    @Test
    void everyDemoPromptIsAnsweredThroughMlPredict() {
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        PrintStream out = System.out;
        int exit;
        System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            exit = new CommandLine(new DemoCommand()).execute("--sql", "--max-tokens", "6", "--timeout", "60");
        } finally {
            System.setOut(out);
        }
        String printed = captured.toString(StandardCharsets.UTF_8);

        assertThat(exit).as(printed).isZero();
        List<String> generations = printed.lines().filter(l -> l.startsWith("[generation]")).toList();
        assertThat(generations).as(printed).hasSize(6);
        for (String id : List.of("q-lists-1", "q-lists-2", "q-exc-1", "chat-1-turn-1", "chat-1-turn-2", "once-1")) {
            assertThat(generations).as(id).filteredOn(l -> l.contains(" " + id + " (")).singleElement()
                    .satisfies(l -> assertThat(l).containsPattern("\\(\\d+ prompt \\+ 0 cached tokens -> [1-6], (STOP|LENGTH)\\)"));
        }
        assertThat(printed).contains("[generation] acme/lists q-lists-1").doesNotContain("[error]").doesNotContain("[context]");
    }
}
