package io.moestream.runtime.graph;

import io.moestream.runtime.arch.Architecture;

/**
 * The forward pass, the same for every backend: the token embeddings, the architecture's blocks
 * layer by layer, the output head. The backend has set up the step (its tokens, positions and KV
 * caches) and reads the logits afterwards.
 */
public final class Forward {

    private final Architecture arch;
    private final Blocks blocks;

    public Forward(Architecture arch, Blocks blocks) {
        this.arch = arch;
        this.blocks = blocks;
    }

    /** The model's architecture running over {@code ops}. */
    public static Forward of(io.moestream.runtime.model.ModelConfig c, Ops ops) {
        return new Forward(Architecture.of(c.architecture()), new Blocks(c, ops));
    }

    public void run() {
        blocks.embed();
        for (int l = 0; l < blocks.config().layers(); l++) {
            arch.layer(blocks, l);
        }
        blocks.logits();
    }
}
