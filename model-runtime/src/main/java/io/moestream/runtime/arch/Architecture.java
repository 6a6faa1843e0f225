package io.moestream.runtime.arch;

import io.moestream.runtime.gguf.GgufFile;
import io.moestream.runtime.gguf.GgufFormatException;
import io.moestream.runtime.graph.Blocks;
import io.moestream.runtime.model.ModelConfig;

import java.util.List;
import java.util.stream.Collectors;

/**
 * One model architecture: its GGUF keys and how one transformer layer is wired from the
 * {@link Blocks} (llama.cpp's {@code src/models/<arch>.cpp}). Tensor names are shared by all
 * architectures ({@link io.moestream.runtime.graph.TensorRole}). docs/runtime.md says how to add one.
 */
public interface Architecture {

    /** Every architecture this runtime runs. */
    List<Architecture> ALL = List.of(new Llama(), new Qwen3Moe(), new Qwen2Moe(), new BailingMoe2(), new Olmoe(),
            new GraniteMoe(), new GptOss(), new DeepSeek2());

    /** {@code general.architecture}. */
    String name();

    /**
     * Reads this architecture's own keys into {@code b}, which holds the keys every architecture has
     * ({@link ModelConfig#from}).
     */
    void configure(GgufFile gguf, ModelConfig.Builder b) throws GgufFormatException;

    /** Layer {@code l}: X in, X out. */
    void layer(Blocks b, int l);

    /** The architecture called {@code name}. */
    static Architecture of(String name) {
        for (Architecture a : ALL) {
            if (a.name().equals(name)) {
                return a;
            }
        }
        throw new IllegalArgumentException("unsupported architecture '" + name + "' (supported: "
                + ALL.stream().map(Architecture::name).collect(Collectors.joining(", ")) + ")");
    }
}
