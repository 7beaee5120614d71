package io.streamflow.flink;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.functions.TableFunction;
import org.apache.flink.types.Row;

/**
 * SQL table function {@code canonical_transaction(value, shape, max_bytes, max_future_skew_s, overall)}:
 * for an event of the canonical shape within the byte limit and the skew bound, the rows (store_id,
 * amount) and (overall, amount) - one window aggregation then yields the per-store and the overall
 * metrics - and nothing otherwise. The realtime aggregator counts these without Python; records for which
 * {@link IsCanonical} is false go to its Python check instead. Not deterministic (reads the clock).
 */
@FunctionHint(output = @DataTypeHint("ROW<store_id STRING, amount DOUBLE>"))
public final class CanonicalTransactions extends TableFunction<Row> {
    private static final long serialVersionUID = 1L;

    public void eval(byte[] value, String shape, Integer maxBytes, Double maxFutureSkewS, String overall) {
        CanonicalEvent event = CanonicalEvent.parseCached(value, CanonicalEvent.pattern(shape), maxBytes);
        if (event != null && event.withinSkew(maxFutureSkewS, System.currentTimeMillis() / 1000.0)) {
            collect(Row.of(event.storeId, event.amount));
            collect(Row.of(overall, event.amount));
        }
    }

    @Override
    public boolean isDeterministic() {
        return false;
    }
}
