package io.streamflow.flink;

import org.apache.flink.table.functions.ScalarFunction;

/** SQL {@code is_canonical(value, shape, max_bytes)}: the record is of the canonical shape and within the
 * byte limit (deterministic: the split between the fast path and the Python check never depends on when
 * it is evaluated). */
public final class IsCanonical extends ScalarFunction {
    private static final long serialVersionUID = 1L;

    public Boolean eval(byte[] value, String shape, Integer maxBytes) {
        return CanonicalEvent.parseCached(value, CanonicalEvent.pattern(shape), maxBytes) != null;
    }
}
