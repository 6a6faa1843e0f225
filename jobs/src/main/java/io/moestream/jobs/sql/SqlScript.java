package io.moestream.jobs.sql;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.TableEnvironment;
import org.apache.flink.table.api.TableResult;
import org.apache.flink.types.Row;
import org.apache.flink.util.CloseableIterator;

/**
 * A Flink SQL script: statements separated by {@code ;} (outside quotes and {@code --} comments),
 * with {@code ${name}} variables, run one after another on a streaming {@link TableEnvironment}
 * (a MiniCluster in this JVM unless the configuration names a cluster); {@code SET 'key' = 'value'}
 * sets a table option. An {@code INSERT} waits for
 * its job to end (bounded sources end it); a query's rows are printed.
 */
public final class SqlScript {

    private static final Pattern SET = Pattern.compile("(?is)SET\\s+'([^']+)'\\s*=\\s*'([^']*)'");

    private SqlScript() {}

    /** The statements of {@code script}, trimmed, without empty ones. */
    public static List<String> statements(String script) {
        List<String> out = new ArrayList<>();
        StringBuilder current = new StringBuilder();
        boolean quoted = false;
        for (int i = 0; i < script.length(); i++) {
            char c = script.charAt(i);
            if (!quoted && c == '-' && i + 1 < script.length() && script.charAt(i + 1) == '-') {
                while (i < script.length() && script.charAt(i) != '\n') {
                    i++;
                }
                current.append('\n');
                continue;
            }
            if (c == '\'') {
                quoted = !quoted; // a doubled quote toggles twice
            }
            if (c == ';' && !quoted) {
                add(out, current);
            } else {
                current.append(c);
            }
        }
        if (quoted) {
            throw new IllegalArgumentException("unterminated string literal in the SQL script");
        }
        add(out, current);
        return out;
    }

    private static void add(List<String> out, StringBuilder current) {
        String s = current.toString().trim();
        if (!s.isEmpty()) {
            out.add(s);
        }
        current.setLength(0);
    }

    /** Replaces each {@code ${name}} by its value; an unknown variable is an error naming it. */
    public static String substitute(String script, Map<String, String> variables) {
        StringBuilder out = new StringBuilder();
        int i = 0;
        while (true) {
            int start = script.indexOf("${", i);
            if (start < 0) {
                return out.append(script, i, script.length()).toString();
            }
            int end = script.indexOf('}', start);
            if (end < 0) {
                throw new IllegalArgumentException("unterminated ${ in the SQL script");
            }
            String name = script.substring(start + 2, end);
            String value = variables.get(name);
            if (value == null) {
                throw new IllegalArgumentException("unknown variable ${" + name + "} in the SQL script; known: "
                        + variables.keySet());
            }
            out.append(script, i, start).append(value);
            i = end + 1;
        }
    }

    /** A streaming table environment with {@code conf}. */
    public static TableEnvironment environment(Configuration conf) {
        return TableEnvironment.create(EnvironmentSettings.newInstance().inStreamingMode().withConfiguration(conf).build());
    }

    /** Runs every statement in order; each query row goes to {@code rows}. */
    public static void run(TableEnvironment env, List<String> statements, Consumer<Row> rows) throws Exception {
        for (String statement : statements) {
            Matcher set = SET.matcher(statement);
            if (set.matches()) { // the SQL client's SET, which executeSql does not take
                env.getConfig().getConfiguration().setString(set.group(1), set.group(2));
                continue;
            }
            TableResult result = env.executeSql(statement);
            if (result.getJobClient().isEmpty()) {
                continue;
            }
            if (result.getResultKind() == org.apache.flink.table.api.ResultKind.SUCCESS_WITH_CONTENT
                    && !statement.regionMatches(true, 0, "INSERT", 0, 6)) {
                try (CloseableIterator<Row> it = result.collect()) {
                    it.forEachRemaining(rows);
                }
            } else {
                result.await();
            }
        }
    }
}
