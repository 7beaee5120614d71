package io.streamflow.flink;

import java.nio.charset.StandardCharsets;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.util.Arrays;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;

/**
 * An event of the canonical shape (flink_app/shape_check.py), read without Python.
 *
 * <p>Why: every event crossed into Python once per job only to be validated (ADR 0012). The shape is a
 * regular expression proven sound against {@code events.parse_event}; an event that matches it (and
 * fits the byte limit) is read here with the values Python would compute: the same doubles (Java's
 * and Python's decimal-to-double conversions are both correctly rounded), the same epoch seconds
 * (micros / 1e6, as {@code datetime.timestamp()}), and the payload text Python's {@code json.dumps}
 * writes (numbers in Python's float repr). tests/flink/test_jvm_functions.py proves each against the
 * Python code on texts hypothesis draws from the shape.
 */
public final class CanonicalEvent {
    /** Field names in the order the shape fixes them. */
    static final String[] FIELDS = {
        "schema_version", "transaction_id", "customer_id", "card_id", "store_id", "store_category", "amount",
        "currency", "channel", "event_time", "lat", "lon", "is_fraud_truth", "fraud_pattern"};
    private static final int AMOUNT = 6;
    private static final int LAT = 10;
    private static final int LON = 11;
    private static final ConcurrentHashMap<String, Pattern> PATTERNS = new ConcurrentHashMap<>();

    public final String transactionId;
    public final String customerId;
    public final String cardId;
    public final String storeId;
    public final String storeCategory;
    public final double amount;
    public final String channel;
    public final String eventTime;
    public final double eventTs;
    public final double lat;
    public final double lon;
    private final String[] members;
    private String payloadJson;

    private CanonicalEvent(String[] values, String[] members) {
        this.transactionId = values[1];
        this.customerId = values[2];
        this.cardId = values[3];
        this.storeId = values[4];
        this.storeCategory = values[5];
        this.amount = Double.parseDouble(values[AMOUNT]);
        this.channel = values[8];
        this.eventTime = values[9];
        this.eventTs = epochSeconds(values[9]);
        this.lat = Double.parseDouble(values[LAT]);
        this.lon = Double.parseDouble(values[LON]);
        this.members = members;
    }

    /** The payload text Python's {@code json.dumps} writes for this event (numbers in Python's float repr);
     * built on first use: only the processor's bronze row needs it. */
    public String payloadJson() {
        if (payloadJson == null) {
            StringBuilder payload = new StringBuilder(256).append('{');
            for (int i = 0; i < FIELDS.length; i++) {
                String member = members[i];
                int colon = member.indexOf(':');
                String literal = member.substring(colon + 1);
                boolean number = i == AMOUNT || i == LAT || i == LON;
                if (i > 0) {
                    payload.append(',');
                }
                payload.append(member, 0, colon + 1).append(number ? pythonFloatRepr(literal) : literal);
            }
            payloadJson = payload.append('}').toString();
        }
        return payloadJson;
    }

    /** The last parse of this thread (see {@link #parseCached}). */
    private static final class Last {
        byte[] value;
        Pattern shape;
        int maxBytes;
        CanonicalEvent event;
    }

    private static final ThreadLocal<Last> LAST = ThreadLocal.withInitial(Last::new);

    /** {@link #parse}, remembered for the next call of the same thread with equal bytes.
     *
     * <p>Why: a SQL job asks about one record several times - its event time for the watermark and again
     * in each branch of the plan, whether it is canonical, its values - each in a different generated
     * operator of one chain (one thread). Parsing is deterministic, so equal bytes (compared in full, not
     * by reference) give the same answer. */
    public static CanonicalEvent parseCached(byte[] value, Pattern shape, int maxBytes) {
        if (value == null) {
            return null;
        }
        Last last = LAST.get();
        if (last.shape == shape && last.maxBytes == maxBytes && Arrays.equals(last.value, value)) {
            return last.event;
        }
        CanonicalEvent event = parse(value, shape, maxBytes);
        last.value = value.clone();
        last.shape = shape;
        last.maxBytes = maxBytes;
        last.event = event;
        return event;
    }

    /** The compiled shape (compiled once per JVM and expression). */
    public static Pattern pattern(String shape) {
        return PATTERNS.computeIfAbsent(shape, Pattern::compile);
    }

    /** The event, or null when {@code value} is not of the shape in full or is longer than maxBytes. */
    public static CanonicalEvent parse(byte[] value, Pattern shape, int maxBytes) {
        if (value == null || value.length > maxBytes) {
            return null;
        }
        // the shape is pure ASCII: a non-ASCII byte cannot match, whatever this decoding makes of it
        String text = new String(value, StandardCharsets.ISO_8859_1);
        if (!shape.matcher(text).matches()) {
            return null;
        }
        // inside the shape no value holds a comma or a quote: the text splits into its 14 members
        String[] members = text.substring(1, text.length() - 1).split(",", -1);
        String[] values = new String[FIELDS.length];
        for (int i = 0; i < FIELDS.length; i++) {
            String literal = members[i].substring(members[i].indexOf(':') + 1);
            values[i] = literal.startsWith("\"") ? literal.substring(1, literal.length() - 1) : literal;
        }
        return new CanonicalEvent(values, members);
    }

    /** True unless the event time is more than maxSkewS ahead of nowS (events.parse_event's rule). */
    public boolean withinSkew(double maxSkewS, double nowS) {
        return !(eventTs - nowS > maxSkewS);
    }

    /** Python's {@code repr(float(literal))} for a plain decimal literal with at most 15 significant
     * digits (then the shortest round-trip form is the literal without trailing zeros; Python writes
     * an exponent below 1e-4). */
    static String pythonFloatRepr(String literal) {
        String sign = literal.startsWith("-") ? "-" : "";
        String body = sign.isEmpty() ? literal : literal.substring(1);
        int dot = body.indexOf('.');
        String whole = dot < 0 ? body : body.substring(0, dot);
        String fraction = dot < 0 ? "" : body.substring(dot + 1);
        int end = fraction.length();
        while (end > 0 && fraction.charAt(end - 1) == '0') {
            end--;
        }
        fraction = fraction.substring(0, end);
        if (whole.equals("0") && !fraction.isEmpty()) {
            int zeros = 0;
            while (fraction.charAt(zeros) == '0') {
                zeros++;
            }
            if (zeros >= 4) {
                String digits = fraction.substring(zeros);
                int exponent = zeros + 1;
                String mantissa = digits.length() > 1 ? digits.charAt(0) + "." + digits.substring(1) : digits;
                return sign + mantissa + "e-" + (exponent < 10 ? "0" : "") + exponent;
            }
        }
        return sign + whole + "." + (fraction.isEmpty() ? "0" : fraction);
    }

    /** The event time as a SQL TIMESTAMP(3) in UTC: what {@code TO_TIMESTAMP} makes of it once 'T' and 'Z'
     * are replaced (the shape allows only calendar-valid 'YYYY-MM-DDTHH:MM:SS.mmmZ'). */
    public LocalDateTime eventDateTime() {
        return dateTime(eventTime);
    }

    /** 'YYYY-MM-DDTHH:MM:SS.mmmZ' (digits where the shape puts them) read without a formatter. */
    static LocalDateTime dateTime(String t) {
        return LocalDateTime.of(digits(t, 0, 4), digits(t, 5, 2), digits(t, 8, 2), digits(t, 11, 2),
                digits(t, 14, 2), digits(t, 17, 2), digits(t, 20, 3) * 1_000_000);
    }

    private static int digits(String text, int from, int count) {
        int value = 0;
        for (int i = from; i < from + count; i++) {
            value = value * 10 + (text.charAt(i) - '0');
        }
        return value;
    }

    /** 'YYYY-MM-DDTHH:MM:SS.mmmZ' to epoch seconds as Python's datetime.timestamp() computes them. */
    static double epochSeconds(String eventTime) {
        LocalDateTime moment = dateTime(eventTime);
        long micros = moment.toEpochSecond(ZoneOffset.UTC) * 1_000_000L + moment.getNano() / 1_000L;
        return (double) micros / 1e6;
    }
}
