package io.streamflow.flink;

import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.regex.Pattern;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.streaming.api.functions.ProcessFunction;
import org.apache.flink.types.Row;
import org.apache.flink.util.Collector;
import org.apache.flink.util.OutputTag;

/**
 * Splits raw Kafka records in one place: an event of the canonical shape, within the byte limit and
 * the future-skew bound, becomes its typed row here (no Python); every other record goes out on
 * {@link #PYTHON} unchanged, to the job's Python check, which decides with the full rules and writes
 * the DLQ reasons. One decision per record (the skew bound reads the clock once): a record takes
 * exactly one of the two paths.
 *
 * <p>Input rows start with the record's value (bytes); {@link Output} says what the fast path emits.
 */
public final class CanonicalRoute extends ProcessFunction<Row, Row> {
    private static final long serialVersionUID = 1L;
    private static final DateTimeFormatter ISO_MILLIS =
            DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'").withZone(ZoneOffset.UTC);

    /** What the fast path emits for an accepted event. */
    public enum Output {
        /** bronze.raw_transactions' row: transaction_id, payload, topic, partition, offset, event_time,
         * ingested_at (input: value, topic, partition, offset), as events.bronze_row writes it. */
        BRONZE,
        /** The detector's typed transaction: customer_id, transaction_id, store_id, store_category,
         * amount, event_time, event_ts, lat, lon (input: value). */
        TRANSACTION
    }

    private final String shape;
    private final int maxBytes;
    private final double maxFutureSkewS;
    private final Output output;
    private final OutputTag<Row> python;
    private transient Pattern pattern;

    public CanonicalRoute(String shape, int maxBytes, double maxFutureSkewS, Output output,
                          TypeInformation<Row> inputType) {
        this.shape = shape;
        this.maxBytes = maxBytes;
        this.maxFutureSkewS = maxFutureSkewS;
        this.output = output;
        this.python = pythonTag(inputType);
    }

    /** The side output of the records the fast path does not take (same type as the input). */
    public static OutputTag<Row> pythonTag(TypeInformation<Row> inputType) {
        return new OutputTag<>("python", inputType);
    }

    static String nowIso() {
        return ISO_MILLIS.format(Instant.now());
    }

    @Override
    public void processElement(Row row, Context ctx, Collector<Row> out) {
        if (pattern == null) {
            pattern = CanonicalEvent.pattern(shape);
        }
        CanonicalEvent event = CanonicalEvent.parse((byte[]) row.getField(0), pattern, maxBytes);
        if (event == null || !event.withinSkew(maxFutureSkewS, System.currentTimeMillis() / 1000.0)) {
            ctx.output(python, row);
            return;
        }
        if (output == Output.BRONZE) {
            out.collect(Row.of(event.transactionId, event.payloadJson(), row.getField(1), row.getField(2),
                    row.getField(3), event.eventTime, nowIso()));
        } else {
            out.collect(Row.of(event.customerId, event.transactionId, event.storeId, event.storeCategory,
                    event.amount, event.eventTime, event.eventTs, event.lat, event.lon));
        }
    }
}
