package io.moestream.operators;

import java.util.List;

/** The operator's keyed-state scope, as its parts see it: which key the state handles act on. */
interface Keys {

    /** Makes {@code key} the current key of every keyed state handle. */
    void select(String key) throws Exception;

    /** The current key, or null. */
    String current();

    /** Every key with a value in the keyed state named {@code state}. */
    List<String> keys(String state) throws Exception;

    /** Processing time, in milliseconds. */
    long now();
}
