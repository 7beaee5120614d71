// Cost of the bronze JDBC sink paths, measured with the same driver and statement text Flink uses.
// Run by bench/sink_cost.py (java single-file launch): args = jdbcUrl user password rows batchRows rounds.
// Prints one JSON object per line: path, rewrite, round, rows, batch, seconds, us_per_row (wall) and
// server_cpu_us_per_row (the PostgreSQL backend's user+system CPU from /proc: less sensitive to a busy host).
import java.sql.Connection;
import java.sql.DriverManager;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.Optional;

import org.apache.flink.connector.jdbc.postgres.database.dialect.PostgresDialect;

public class SinkCost {
    static final String[] COLUMNS = {"transaction_id", "payload", "kafka_topic", "kafka_partition", "kafka_offset",
                                     "event_time", "ingested_at"};

    public static void main(String[] args) throws Exception {
        String url = args[0], user = args[1], password = args[2];
        int rows = Integer.parseInt(args[3]), batch = Integer.parseInt(args[4]);
        String run = Long.toHexString(System.nanoTime());
        PostgresDialect dialect = new PostgresDialect();
        for (String table : new String[] {"bronze.raw_transactions", "bronze.raw_transactions_inbox"}) {
            Optional<String> upsert = dialect.getUpsertStatement(table, COLUMNS, new String[] {"transaction_id"});
            System.out.println("{\"statement\": \"" + upsert.get().replace("\"", "\\\"") + "\"}");
        }
        for (int round = 0; round < Integer.parseInt(args[5]); round++) {
            for (boolean rewrite : new boolean[] {false, true}) {
                for (String table : new String[] {"bronze.raw_transactions", "bronze.raw_transactions_inbox"}) {
                    // Flink binds :name parameters through FieldNamedPreparedStatement, i.e. as positional ? in order
                    String sql = dialect.getUpsertStatement(table, COLUMNS, new String[] {"transaction_id"}).get()
                            .replaceAll(":[a-z_]+", "?");
                    String u = url + (url.contains("?") ? "&" : "?") + "stringtype=unspecified&reWriteBatchedInserts=" + rewrite;
                    try (Connection c = DriverManager.getConnection(u, user, password)) {
                        String prefix = "bench-" + run + "-" + round + "-" + rewrite + "-" + table.length() + "-";
                        String path = table.endsWith("_inbox") ? "inbox+trigger" : "plain upsert";
                        int pid = backendPid(c);
                        for (String phase : new String[] {"insert", "replay"}) {  // replay: every key exists (DO UPDATE)
                            long cpu = cpuTicks(pid);
                            double seconds = write(c, sql, prefix, rows, batch);
                            double cpuSeconds = (cpuTicks(pid) - cpu) / 100.0;
                            System.out.printf("{\"path\": \"%s\", \"phase\": \"%s\", \"rewrite\": %s, \"round\": %d, "
                                    + "\"rows\": %d, \"batch\": %d, \"seconds\": %.3f, \"us_per_row\": %.1f, "
                                    + "\"server_cpu_us_per_row\": %.1f}%n", path, phase, rewrite, round, rows, batch, seconds,
                                    seconds * 1e6 / rows, cpuSeconds * 1e6 / rows);
                        }
                        try (Statement s = c.createStatement()) {
                            s.execute("DELETE FROM bronze.raw_transactions WHERE transaction_id LIKE 'bench-" + run + "-%'");
                        }
                    }
                }
            }
        }
    }

    static int backendPid(Connection c) throws Exception {
        try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("SELECT pg_backend_pid()")) {
            r.next();
            return r.getInt(1);
        }
    }

    /** utime + stime of a local process, in clock ticks (USER_HZ = 100 on Linux). */
    static long cpuTicks(int pid) throws Exception {
        String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
        String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return Long.parseLong(fields[11]) + Long.parseLong(fields[12]);
    }

    static double write(Connection c, String sql, String prefix, int rows, int batch) throws Exception {
        long start = System.nanoTime();
        try (PreparedStatement ps = c.prepareStatement(sql)) {
            for (int i = 0; i < rows; i++) {
                String id = prefix + i;
                ps.setString(1, id);
                ps.setString(2, "{\"schema_version\":1,\"transaction_id\":\"" + id + "\",\"customer_id\":\"C0001\","
                        + "\"card_id\":\"K0001\",\"store_id\":\"S0042\",\"store_category\":\"grocery\",\"amount\":12.34,"
                        + "\"currency\":\"EUR\",\"channel\":\"pos\",\"event_time\":\"2026-12-02T10:00:00.123Z\","
                        + "\"lat\":48.137,\"lon\":11.575,\"is_fraud_truth\":false,\"fraud_pattern\":null}");
                ps.setString(3, "transactions.raw");
                ps.setInt(4, i % 3);
                ps.setLong(5, i);
                ps.setString(6, "2026-12-02T10:00:00.123Z");
                ps.setString(7, "2026-12-02T10:00:01.000Z");
                ps.addBatch();
                if ((i + 1) % batch == 0 || i == rows - 1) {
                    ps.executeBatch();  // autocommit, as Flink's JDBC sink: one implicit transaction per batch
                }
            }
        }
        return (System.nanoTime() - start) / 1e9;
    }
}
