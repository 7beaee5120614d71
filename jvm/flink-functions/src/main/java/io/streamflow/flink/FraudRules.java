package io.streamflow.flink;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The five rules and the state update of flink_app/detection/rules.py, and the alert decisions of
 * FraudScorer.process, in Java: per event no Python at all, unless an alert is raised.
 *
 * <p>Valid only where a rule alone reaches the alert threshold and the model alone cannot (the job
 * checks this at start-up and otherwise keeps the Python scorer): then an alert is raised exactly
 * when a rule fires, and the model only decides the alert's scores. Python scores the
 * {@link Candidate}s this emits (2-3 % of the events) with the model. Same arithmetic as Python
 * (IEEE doubles, same order of operations); tests/flink/test_jvm_functions.py compares the alerts with
 * FraudScorer's on streams hypothesis draws.
 */
public final class FraudRules {
    static final String VELOCITY = "velocity_burst";
    static final String IMPOSSIBLE_TRAVEL = "impossible_travel";
    static final String HIGH_VALUE = "high_value";
    static final String CARD_TESTING = "card_testing";
    static final String UNUSUAL_HOUR_CATEGORY = "unusual_hour_category";

    private final RuleConfig cfg;

    public FraudRules(RuleConfig cfg) {
        this.cfg = cfg;
    }

    /** One transaction to judge (the fields the rules and the features read). */
    public static final class Txn {
        final String transactionId;
        final String storeId;
        final String storeCategory;
        final double amount;
        final String eventTime;
        final double ts;
        final double lat;
        final double lon;

        public Txn(String transactionId, String storeId, String storeCategory, double amount, String eventTime,
                   double ts, double lat, double lon) {
            this.transactionId = transactionId;
            this.storeId = storeId;
            this.storeCategory = storeCategory;
            this.amount = amount;
            this.eventTime = eventTime;
            this.ts = ts;
            this.lat = lat;
            this.lon = lon;
        }
    }

    /** An alert to raise: the transaction, the rules that fired, and its features' inputs for the model. */
    public static final class Candidate {
        public final CustomerState.Recent entry;
        public final List<String> rules;
        public final boolean retroactive;

        Candidate(CustomerState.Recent entry, List<String> rules, boolean retroactive) {
            this.entry = entry;
            this.rules = rules;
            this.retroactive = retroactive;
        }
    }

    private static final class Hit {
        final String rule;
        final List<String> burstIds;

        Hit(String rule, List<String> burstIds) {
            this.rule = rule;
            this.burstIds = burstIds;
        }
    }

    static double haversineKm(double lat1, double lon1, double lat2, double lon2) {
        double r = 6371.0088;
        double p1 = radians(lat1);
        double p2 = radians(lat2);
        double dp = p2 - p1;
        double dl = radians(lon2 - lon1);
        double sp = Math.sin(dp / 2);
        double sl = Math.sin(dl / 2);
        double a = sp * sp + Math.cos(p1) * Math.cos(p2) * (sl * sl);
        return 2 * r * Math.asin(Math.min(1.0, Math.sqrt(a)));
    }

    private static double radians(double degrees) {
        return degrees * (Math.PI / 180.0);
    }

    static int hourOfDay(double ts) {
        return (int) Math.floorMod((long) Math.floor(ts), 86_400L) / 3600;
    }

    /** (km, km/h) from the customer's last location; (0, 0) without one. */
    static double[] impliedSpeed(CustomerState s, Txn t) {
        if (!s.hasLast) {
            return new double[] {0.0, 0.0};
        }
        double km = haversineKm(s.lastLat, s.lastLon, t.lat, t.lon);
        double hours = Math.max(Math.abs(t.ts - s.lastTs), 1.0) / 3600.0;
        return new double[] {km, km / hours};
    }

    private static List<CustomerState.Recent> inWindow(CustomerState s, double now, double windowS) {
        List<CustomerState.Recent> out = new ArrayList<>();
        for (CustomerState.Recent r : s.recent) {
            if (now - windowS < r.ts && r.ts <= now) {
                out.add(r);
            }
        }
        return out;
    }

    private List<Hit> evaluate(CustomerState s, Txn t) {
        List<Hit> hits = new ArrayList<>(2);
        List<CustomerState.Recent> window = inWindow(s, t.ts, cfg.velocityWindowS);
        if (window.size() + 1 >= cfg.velocityCount) {
            hits.add(new Hit(VELOCITY, ids(window)));
        }
        double[] speed = impliedSpeed(s, t);
        if (speed[0] >= cfg.travelMinKm && speed[1] > cfg.travelSpeedKmh) {
            hits.add(new Hit(IMPOSSIBLE_TRAVEL, List.of()));
        }
        if (s.count >= cfg.highValueMinHistory) {
            double std = Math.max(s.std(), cfg.highValueMinStdRatio * s.mean);
            if (t.amount > s.mean + cfg.highValueSigmas * std) {
                hits.add(new Hit(HIGH_VALUE, List.of()));
            }
        }
        if (t.amount < cfg.tinyAmount) {
            List<CustomerState.Recent> tiny = new ArrayList<>();
            for (CustomerState.Recent r : inWindow(s, t.ts, cfg.cardTestingWindowS)) {
                if (r.amount < cfg.tinyAmount) {
                    tiny.add(r);
                }
            }
            if (tiny.size() + 1 >= cfg.cardTestingCount) {
                hits.add(new Hit(CARD_TESTING, ids(tiny)));
            }
        }
        int hour = hourOfDay(t.ts);
        if (cfg.unusualHourStart <= hour && hour < cfg.unusualHourEnd && s.count >= cfg.unusualMinHistory
                && !s.categories.contains(t.storeCategory)
                && !(t.amount < cfg.unusualAmountRatio * Math.max(s.mean, 1.0))) {
            hits.add(new Hit(UNUSUAL_HOUR_CATEGORY, List.of()));
        }
        return hits;
    }

    private static List<String> ids(List<CustomerState.Recent> entries) {
        List<String> out = new ArrayList<>(entries.size());
        for (CustomerState.Recent r : entries) {
            out.add(r.transactionId);
        }
        return out;
    }

    /** What scoring.features reads of the state before {@code t} (its 60 s / 600 s / 2.0 are fixed there). */
    private static CustomerState.Snapshot snapshot(CustomerState s, Txn t) {
        CustomerState.Snapshot out = new CustomerState.Snapshot();
        out.count = s.count;
        out.mean = s.mean;
        out.m2 = s.m2;
        out.hasLast = s.hasLast;
        out.lastTs = s.lastTs;
        out.lastLat = s.lastLat;
        out.lastLon = s.lastLon;
        for (CustomerState.Recent r : s.recent) {
            if (t.ts - 60 < r.ts && r.ts <= t.ts) {
                out.last60++;
            }
            if (t.ts - 600 < r.ts && r.ts <= t.ts && r.amount < 2.0) {
                out.tiny600++;
            }
        }
        out.newCategory = s.count >= 3 && !s.categories.contains(t.storeCategory);
        return out;
    }

    /** Judge {@code t}, update the state, and return the alerts to raise (its own first, then its burst's). */
    public List<Candidate> process(CustomerState s, Txn t) {
        List<Hit> hits = evaluate(s, t);
        CustomerState.Snapshot before = snapshot(s, t);
        Map<String, List<String>> burst = new LinkedHashMap<>();
        for (Hit hit : hits) {
            for (String earlier : hit.burstIds) {
                burst.computeIfAbsent(earlier, k -> new ArrayList<>(2)).add(hit.rule);
            }
        }
        CustomerState.Recent entry = update(s, t, hits, before);
        List<Candidate> out = new ArrayList<>(0);
        if (!hits.isEmpty()) {
            entry.alerted = true;
            List<String> fired = new ArrayList<>(hits.size());
            for (Hit hit : hits) {
                fired.add(hit.rule);
            }
            out.add(new Candidate(entry, fired, false));
        }
        if (!burst.isEmpty()) {
            for (CustomerState.Recent recent : s.recent) {
                List<String> rules = burst.get(recent.transactionId);
                if (recent.alerted || rules == null) {
                    continue;
                }
                recent.alerted = true;
                out.add(new Candidate(recent, rules, true));
            }
        }
        return out;
    }

    private CustomerState.Recent update(CustomerState s, Txn t, List<Hit> hits, CustomerState.Snapshot before) {
        boolean jumped = false;
        for (Hit hit : hits) {
            jumped |= hit.rule.equals(IMPOSSIBLE_TRAVEL);
        }
        if (hits.isEmpty()) {
            s.count += 1;
            double delta = t.amount - s.mean;
            s.mean += delta / s.count;
            s.m2 += delta * (t.amount - s.mean);
            if (!s.categories.contains(t.storeCategory)) {
                s.categories.add(t.storeCategory);
            }
        }
        if (!jumped && (!s.hasLast || t.ts >= s.lastTs)) {
            s.hasLast = true;
            s.lastTs = t.ts;
            s.lastLat = t.lat;
            s.lastLon = t.lon;
        }
        CustomerState.Recent entry = new CustomerState.Recent();
        entry.ts = t.ts;
        entry.amount = t.amount;
        entry.transactionId = t.transactionId;
        entry.eventTime = t.eventTime;
        entry.storeId = t.storeId;
        entry.lat = t.lat;
        entry.lon = t.lon;
        entry.before = before;
        s.recent.add(entry);
        int drop = 0;
        while (drop < s.recent.size() && s.recent.get(drop).ts <= t.ts - cfg.windowKeepS) {
            drop++;
        }
        if (drop > 0) {
            s.recent.subList(0, drop).clear();
        }
        return entry;
    }
}
