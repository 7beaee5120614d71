package io.streamflow.flink;

import org.apache.flink.api.common.functions.FilterFunction;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.types.Row;
import org.apache.flink.types.RowKind;

/**
 * Graph pieces the PyFlink jobs add through Py4J (flink_app/jvm_functions.py): each returns a Java
 * stream that the Python job wraps again. Operator uids are fixed here, as state and savepoints need.
 */
public final class Streams {
    private Streams() {}

    /** The fast path over raw records: typed rows of {@code output} for canonical events; the others on
     * {@link #notCanonical}. */
    public static SingleOutputStreamOperator<Row> canonical(DataStream<Row> raw, String shape, int maxBytes,
                                                            double maxFutureSkewS, String output,
                                                            TypeInformation<Row> outputType) {
        return raw.process(new CanonicalRoute(shape, maxBytes, maxFutureSkewS, CanonicalRoute.Output.valueOf(output),
                        raw.getType()))
                .returns(outputType).name("canonical").uid("canonical");
    }

    /** The records {@link #canonical} did not take, unchanged (for the Python check). */
    public static DataStream<Row> notCanonical(SingleOutputStreamOperator<Row> routed, DataStream<Row> raw) {
        return routed.getSideOutput(CanonicalRoute.pythonTag(raw.getType()));
    }

    /** Keyed by customer_id (field 0) in Java, judged by {@link FraudRulesFunction}. */
    public static SingleOutputStreamOperator<Row> fraudRules(DataStream<Row> transactions, double[] ruleConfig,
                                                             int stateTtlDays, TypeInformation<Row> candidateType) {
        return transactions.keyBy(new CustomerKey(), Types.STRING)
                .process(new FraudRulesFunction(ruleConfig, stateTtlDays))
                .returns(candidateType).name("rules").uid("rules");
    }

    /** An updating table's changelog as upserts: without its UPDATE_BEFORE rows (an upsert sink needs only
     * the new row per key, and the planner then needs no SinkUpsertMaterializer: flink_app.jobs.realtime_aggregator).
     * It starts a new chain: the sinks after it (JDBC flushes wait for PostgreSQL) run in a thread of their
     * own instead of the window operator's (measured in the pipeline: the window thread spent a quarter of
     * its samples waiting on PostgreSQL's answer; ADR 0012). */
    public static DataStream<Row> upserts(DataStream<Row> changelog) {
        return changelog.filter(new NotUpdateBefore()).name("upserts").uid("upserts").startNewChain();
    }

    /** Keeps every row but UPDATE_BEFORE. */
    public static final class NotUpdateBefore implements FilterFunction<Row> {
        private static final long serialVersionUID = 1L;

        @Override
        public boolean filter(Row row) {
            return row.getKind() != RowKind.UPDATE_BEFORE;
        }
    }

    /** customer_id, the first field of the typed transaction. */
    public static final class CustomerKey implements KeySelector<Row, String> {
        private static final long serialVersionUID = 1L;

        @Override
        public String getKey(Row row) {
            return (String) row.getField(0);
        }
    }
}
