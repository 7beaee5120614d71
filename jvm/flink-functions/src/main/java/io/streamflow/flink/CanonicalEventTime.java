package io.streamflow.flink;

import java.time.LocalDateTime;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.functions.ScalarFunction;

/** SQL {@code canonical_event_time(value, shape, max_bytes)}: the event time of a record of the canonical
 * shape within the byte limit, as TIMESTAMP(3) (UTC); NULL for every other record.
 *
 * <p>Why: the realtime aggregator's event time (the watermark's, and the windows') was read with
 * {@code JSON_VALUE}, which parses the whole document into a tree - and the planner computes the column
 * once for the watermark and again in each branch that reads the source. For a canonical record this gives
 * the same TIMESTAMP (the shape fixes the field and its format) from the parse the other functions of the
 * chain share ({@link CanonicalEvent#parseCached}); the SQL falls back to {@code JSON_VALUE} for the others.
 * Deterministic: no clock. */
public final class CanonicalEventTime extends ScalarFunction {
    private static final long serialVersionUID = 1L;

    public @DataTypeHint("TIMESTAMP(3)") LocalDateTime eval(byte[] value, String shape, Integer maxBytes) {
        CanonicalEvent event = CanonicalEvent.parseCached(value, CanonicalEvent.pattern(shape), maxBytes);
        return event == null ? null : event.eventDateTime();
    }
}
