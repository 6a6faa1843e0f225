package io.moestream.operators;

import io.moestream.schemas.Document;
import io.moestream.schemas.ErrorCode;
import io.moestream.schemas.InferenceError;
import java.util.ArrayList;
import java.util.List;

/**
 * The rules a {@link Document} part must follow: tenant and document id present, {@code part >= 0},
 * and a document of a single part is not empty. Order of parts is checked by the
 * {@link InferenceOperator}, which knows the previous parts.
 */
public final class DocumentValidator implements RecordValidator<Document> {

    private static final long serialVersionUID = 1L;

    @Override
    public List<String> problems(Document d) {
        List<String> problems = new ArrayList<>();
        checkId("tenant", d.getTenant(), "set the tenant that owns the document", problems);
        checkId("document_id", d.getDocumentId(), "set the id prompts will use as context_id", problems);
        if (d.getPart() < 0) {
            problems.add("part is " + d.getPart() + ": parts are numbered from 0");
        }
        if (d.getPart() == 0 && d.getLast() && (d.getText() == null || d.getText().isEmpty())) {
            problems.add("text is empty and this is the only part: the document would be empty");
        }
        return problems;
    }

    @Override
    public InferenceError.Builder invalid(Document document, String message, long nowMillis) {
        return Outcomes.document(document, ErrorCode.INVALID_PARAMS, message, nowMillis);
    }

    /** An id must be non-blank and must not contain the key separator. */
    static void checkId(String field, String value, String hint, List<String> problems) {
        if (value == null || value.isBlank()) {
            problems.add(field + " is empty: " + hint);
        } else if (value.indexOf(ContextKey.SEPARATOR) >= 0) {
            problems.add(field + " contains the character U+0000, which is reserved: remove it");
        }
    }
}
