package io.streamflow.flink;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import org.apache.flink.types.Row;

/**
 * A line protocol over stdin/stdout so the Python tests can hold these classes to the Python code they
 * mirror, on inputs hypothesis draws (tests/flink/test_jvm_functions.py). Not used by the jobs.
 *
 * <pre>
 * shape SHAPE_BASE64 MAX_BYTES      then per line: base64 bytes -> "-" or the parsed fields, tab-separated
 * rules V1,V2,...                   then per line: customer txn store category amount event_time ts lat lon
 *                                   (tab-separated) -> candidate rows, tab-separated, then ".";
 *                                   "reset" forgets every customer -> "."
 * </pre>
 */
public final class Harness {
    private Harness() {}

    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        if (args[0].equals("shape")) {
            Pattern shape = Pattern.compile(new String(Base64.getDecoder().decode(args[1]), StandardCharsets.UTF_8));
            int maxBytes = Integer.parseInt(args[2]);
            for (String line = in.readLine(); line != null; line = in.readLine()) {
                CanonicalEvent e = CanonicalEvent.parse(Base64.getDecoder().decode(line), shape, maxBytes);
                out.println(e == null ? "-" : String.join("\t", e.transactionId, e.customerId, e.cardId, e.storeId,
                        e.storeCategory, Double.toString(e.amount), e.channel, e.eventTime, Double.toString(e.eventTs),
                        Double.toString(e.lat), Double.toString(e.lon), e.payloadJson()));
                out.flush();
            }
        } else {
            String[] parts = args[1].split(",");
            double[] values = new double[parts.length];
            for (int i = 0; i < parts.length; i++) {
                values[i] = Double.parseDouble(parts[i]);
            }
            FraudRules rules = new FraudRules(new RuleConfig(values));
            Map<String, CustomerState> customers = new HashMap<>();
            for (String line = in.readLine(); line != null; line = in.readLine()) {
                if (line.equals("reset")) {
                    customers.clear();
                    out.println(".");
                    out.flush();
                    continue;
                }
                String[] f = line.split("\t", -1);
                CustomerState state = customers.computeIfAbsent(f[0], k -> new CustomerState());
                List<FraudRules.Candidate> alerts = rules.process(state, new FraudRules.Txn(f[1], f[2], f[3],
                        Double.parseDouble(f[4]), f[5], Double.parseDouble(f[6]), Double.parseDouble(f[7]),
                        Double.parseDouble(f[8])));
                for (FraudRules.Candidate alert : alerts) {
                    Row row = FraudRulesFunction.candidateRow(f[0], alert);
                    StringBuilder text = new StringBuilder();
                    for (int i = 0; i < row.getArity(); i++) {
                        text.append(i == 0 ? "" : "\t").append(row.getField(i));
                    }
                    out.println(text);
                }
                out.println(".");
                out.flush();
            }
        }
    }
}
