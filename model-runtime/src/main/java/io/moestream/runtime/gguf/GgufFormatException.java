package io.moestream.runtime.gguf;

import java.io.IOException;

/** A GGUF file that is corrupt, truncated or uses something this reader does not support. */
public final class GgufFormatException extends IOException {

    public GgufFormatException(String message) {
        super(message);
    }
}
