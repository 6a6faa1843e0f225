package io.moestream.jobs.cli;

import picocli.CommandLine;

import java.nio.file.Files;
import java.nio.file.Path;

/** Argument checks shared by the commands, with messages that say what to fix. */
final class CliSupport {
    private CliSupport() {}

    static Path existingFile(Path file, String option) {
        if (!Files.isRegularFile(file)) {
            throw new CommandLine.ParameterException(new CommandLine(new Main()),
                    option + ": no such file: " + file.toAbsolutePath());
        }
        return file;
    }
}
