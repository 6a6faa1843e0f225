package io.moestream.runtime.backend;

/** A requested backend cannot run here; the message says why (no driver, no device, no kernels built...). */
public class BackendUnavailableException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    public BackendUnavailableException(String message) {
        super(message);
    }

    public BackendUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
