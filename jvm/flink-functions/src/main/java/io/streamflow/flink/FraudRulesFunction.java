package io.streamflow.flink;

import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.List;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.types.Row;
import org.apache.flink.util.Collector;

/**
 * The fraud detector's keyed operator (key: customer_id): {@link FraudRules} over one state value per
 * customer, and the daily expiry timer of flink_app/detection/keyed.py (registered only when the
 * customer's expiry day moves; the timer clears a customer idle for the TTL).
 *
 * <p>Input: the typed transaction of {@link CanonicalRoute.Output#TRANSACTION}. Output: one row per
 * alert to raise ({@link #CANDIDATE_FIELDS}); Python adds the model's score.
 */
public final class FraudRulesFunction extends KeyedProcessFunction<String, Row, Row> {
    private static final long serialVersionUID = 1L;
    static final long DAY_MS = 86_400_000L;
    /** The candidate row, in order (flink_app/detection/candidates.py reads it; ids in base64). */
    public static final String[] CANDIDATE_FIELDS = {
        "transaction_id", "customer_id", "store_id", "amount", "event_time", "event_ts", "lat", "lon", "rules",
        "retroactive", "count", "mean", "m2", "has_last", "last_ts", "last_lat", "last_lon", "last_60", "tiny_600",
        "new_category"};

    private final double[] ruleConfig;
    private final int stateTtlDays;
    private transient FraudRules rules;
    private transient ValueState<CustomerState> state;

    public FraudRulesFunction(double[] ruleConfig, int stateTtlDays) {
        this.ruleConfig = ruleConfig.clone();
        this.stateTtlDays = stateTtlDays;
    }

    @Override
    public void open(OpenContext openContext) {
        rules = new FraudRules(new RuleConfig(ruleConfig));
        state = getRuntimeContext().getState(
                new ValueStateDescriptor<>("customer", TypeInformation.of(CustomerState.class)));
    }

    static long expiryTimerMs(long nowMs, int ttlDays) {
        return (Math.floorDiv(nowMs, DAY_MS) + 1) * DAY_MS + ttlDays * DAY_MS;
    }

    @Override
    public void processElement(Row row, Context ctx, Collector<Row> out) throws Exception {
        CustomerState customer = state.value();
        if (customer == null) {
            customer = new CustomerState();
        }
        String customerId = (String) row.getField(0);
        FraudRules.Txn txn = new FraudRules.Txn((String) row.getField(1), (String) row.getField(2),
                (String) row.getField(3), (Double) row.getField(4), (String) row.getField(5),
                (Double) row.getField(6), (Double) row.getField(7), (Double) row.getField(8));
        List<FraudRules.Candidate> alerts = rules.process(customer, txn);
        long nowMs = ctx.timerService().currentProcessingTime();
        long wanted = expiryTimerMs(nowMs, stateTtlDays);
        if (wanted != customer.timerMs) {
            ctx.timerService().registerProcessingTimeTimer(wanted);
            customer.timerMs = wanted;
        }
        customer.lastSeenMs = nowMs;
        state.update(customer);
        for (FraudRules.Candidate alert : alerts) {
            out.collect(candidateRow(customerId, alert));
        }
    }

    /** The candidate row. The three ids go as base64 of their UTF-8 bytes: a Java String reaches Python
     * through UTF-16, which drops a leading U+FEFF (issue 17); ASCII arrives intact. */
    static Row candidateRow(String customerId, FraudRules.Candidate alert) {
        CustomerState.Recent e = alert.entry;
        CustomerState.Snapshot b = e.before;
        return Row.of(base64(e.transactionId), base64(customerId), base64(e.storeId), e.amount, e.eventTime, e.ts,
                e.lat, e.lon,
                String.join(",", alert.rules), alert.retroactive, b.count, b.mean, b.m2, b.hasLast,
                b.lastTs, b.lastLat, b.lastLon, b.last60, b.tiny600, b.newCategory);
    }

    private static String base64(String text) {
        return Base64.getEncoder().encodeToString(text.getBytes(StandardCharsets.UTF_8));
    }

    @Override
    public void onTimer(long timestamp, OnTimerContext ctx, Collector<Row> out) throws Exception {
        CustomerState customer = state.value();
        if (customer == null || timestamp - customer.lastSeenMs >= stateTtlDays * DAY_MS) {
            state.clear();
        }
    }
}
