package io.moestream.operators;

import io.moestream.schemas.Document;
import io.moestream.schemas.Generation;
import io.moestream.schemas.Prompt;

import java.util.List;
import java.util.Optional;
import java.util.stream.Collectors;

import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.streaming.util.KeyedTwoInputStreamOperatorTestHarness;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.runtime.tasks.mailbox.Mail;
import org.apache.flink.streaming.runtime.tasks.mailbox.TaskMailbox;
import org.apache.flink.util.OutputTag;

/** The keyed two-input test harness around an {@link InferenceOperator}, and what the operator tests do with it. */
final class OperatorHarness {

    private OperatorHarness() {}

    static KeyedTwoInputStreamOperatorTestHarness<String, Document, Prompt, Generation> harness(InferenceConfig config)
            throws Exception {
        return new KeyedTwoInputStreamOperatorTestHarness<>(new InferenceOperator(config),
                ContextKey.documentSelector(), ContextKey.promptSelector(), Types.STRING);
    }

    static KeyedTwoInputStreamOperatorTestHarness<String, Document, Prompt, Generation> open(InferenceConfig config)
            throws Exception {
        KeyedTwoInputStreamOperatorTestHarness<String, Document, Prompt, Generation> h = harness(config);
        h.open();
        return h;
    }

    /**
     * Runs one mail if there is one: a step mail (admission, launching a step) or a step's completion
     * (sampling, launching the next, answers, admission). While a step is being computed on the
     * engine thread, waits for its completion mail.
     */
    static boolean runMail(KeyedTwoInputStreamOperatorTestHarness<?, ?, ?, ?> h) throws Exception {
        Optional<Mail> mail = h.getTaskMailbox().tryTake(TaskMailbox.MIN_PRIORITY);
        if (mail.isEmpty() && operator(h).stepInFlight()) {
            mail = Optional.of(h.getTaskMailbox().take(TaskMailbox.MIN_PRIORITY));
        }
        if (mail.isEmpty()) {
            return false;
        }
        mail.get().run();
        return true;
    }

    /** Runs mails (steps) until the mailbox is empty, i.e. until no work is left; returns how many ran. */
    static int drain(KeyedTwoInputStreamOperatorTestHarness<?, ?, ?, ?> h) throws Exception {
        int n = 0;
        while (runMail(h)) {
            n++;
        }
        return n;
    }

    /**
     * Sends a document part and runs steps until no work is left: the part is prefilled in steps (and
     * whatever else is queued runs too).
     */
    static void ingest(KeyedTwoInputStreamOperatorTestHarness<String, Document, Prompt, Generation> h, Document part)
            throws Exception {
        h.processElement1(new StreamRecord<>(part));
        drain(h);
    }

    static InferenceOperator operator(KeyedTwoInputStreamOperatorTestHarness<?, ?, ?, ?> h) {
        return (InferenceOperator) h.getOperator();
    }

    /** What the operator emitted on a side output so far. */
    static <T> List<T> side(KeyedTwoInputStreamOperatorTestHarness<?, ?, ?, ?> h, OutputTag<T> tag) {
        var queue = h.getSideOutput(tag);
        return queue == null ? List.of() : queue.stream().map(StreamRecord::getValue).collect(Collectors.toList());
    }
}
