package io.moestream.runtime.constrain;

import io.moestream.runtime.gguf.GgmlType;
import io.moestream.runtime.model.DefaultModel;
import io.moestream.runtime.model.Model;
import io.moestream.runtime.synthetic.SyntheticModels;
import io.moestream.runtime.synthetic.SyntheticSpec;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The models the structured-output tests run: the bundled trained model and a random-weight synthetic one (loaded once). */
final class Vocabularies {

    private static Model trained;
    private static Model synthetic;

    private Vocabularies() {}

    static synchronized Model trained() {
        if (trained == null) {
            try {
                trained = Model.load(DefaultModel.path());
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return trained;
    }

    static synchronized Model synthetic() {
        if (synthetic == null) {
            try {
                Path f = Files.createTempFile("moestream-constrain-tiny-", ".gguf");
                f.toFile().deleteOnExit();
                SyntheticModels.write(SyntheticSpec.tiny(11), GgmlType.F32, f);
                synthetic = Model.load(f);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return synthetic;
    }
}
