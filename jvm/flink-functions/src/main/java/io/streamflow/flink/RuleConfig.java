package io.streamflow.flink;

import java.io.Serializable;

/** flink_app.detection.rules.RuleConfig, passed from Python as its fields in declaration order. */
public final class RuleConfig implements Serializable {
    private static final long serialVersionUID = 1L;
    /** The Python dataclass's field names, in the order {@link #RuleConfig(double[])} reads them. */
    public static final String[] FIELDS = {
        "velocity_count", "velocity_window_s", "travel_speed_kmh", "travel_min_km", "high_value_sigmas",
        "high_value_min_history", "high_value_min_std_ratio", "tiny_amount", "card_testing_count",
        "card_testing_window_s", "unusual_hour_start", "unusual_hour_end", "unusual_min_history",
        "unusual_amount_ratio", "window_keep_s"};

    final int velocityCount;
    final double velocityWindowS;
    final double travelSpeedKmh;
    final double travelMinKm;
    final double highValueSigmas;
    final int highValueMinHistory;
    final double highValueMinStdRatio;
    final double tinyAmount;
    final int cardTestingCount;
    final double cardTestingWindowS;
    final int unusualHourStart;
    final int unusualHourEnd;
    final int unusualMinHistory;
    final double unusualAmountRatio;
    final double windowKeepS;

    public RuleConfig(double[] values) {
        if (values.length != FIELDS.length) {
            throw new IllegalArgumentException("RuleConfig needs " + FIELDS.length + " values, got " + values.length);
        }
        velocityCount = (int) values[0];
        velocityWindowS = values[1];
        travelSpeedKmh = values[2];
        travelMinKm = values[3];
        highValueSigmas = values[4];
        highValueMinHistory = (int) values[5];
        highValueMinStdRatio = values[6];
        tinyAmount = values[7];
        cardTestingCount = (int) values[8];
        cardTestingWindowS = values[9];
        unusualHourStart = (int) values[10];
        unusualHourEnd = (int) values[11];
        unusualMinHistory = (int) values[12];
        unusualAmountRatio = values[13];
        windowKeepS = values[14];
    }
}
