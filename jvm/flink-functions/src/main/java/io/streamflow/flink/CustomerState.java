package io.streamflow.flink;

import java.util.ArrayList;
import java.util.List;

/**
 * flink_app.detection.rules.CustomerState in Java: what the rules know of one customer.
 *
 * <p>A POJO (public fields, no-argument constructor) so Flink's POJO serializer writes it to
 * checkpoints; with the HashMap state backend it lives on the heap and is never serialised per event.
 */
public class CustomerState {
    public int count;
    public double mean;
    public double m2;
    public boolean hasLast;
    public double lastTs;
    public double lastLat;
    public double lastLon;
    /** Categories the customer has used (a small list: a customer uses a handful). */
    public List<String> categories = new ArrayList<>();
    /** Recent transactions, oldest first (within window_keep_s of the newest). */
    public List<Recent> recent = new ArrayList<>();
    /** Processing time of the last event and the expiry timer registered for the customer. */
    public long lastSeenMs;
    public long timerMs;

    public CustomerState() {}

    double std() {
        return count > 1 ? Math.sqrt(m2 / (count - 1)) : 0.0;
    }

    /** A recent transaction, and what the model needs to score it later (its features' inputs). */
    public static class Recent {
        public double ts;
        public double amount;
        public String transactionId;
        public String eventTime;
        public String storeId;
        public boolean alerted;
        public double lat;
        public double lon;
        public Snapshot before;

        public Recent() {}
    }

    /** The customer's state before a transaction, as far as the model's features read it. */
    public static class Snapshot {
        public int count;
        public double mean;
        public double m2;
        public boolean hasLast;
        public double lastTs;
        public double lastLat;
        public double lastLon;
        public int last60;
        public int tiny600;
        public boolean newCategory;

        public Snapshot() {}
    }
}
