-- Warehouse-wide session defaults (apply to new connections).
-- jit = off: PostgreSQL's LLVM JIT spent ~14 s compiling one 10k-row staging query on a 2-core host and
-- saves nothing at this data size (dbt also sets it per model/test: dbt/macros/performance.sql).
DO $$
BEGIN
    EXECUTE format('ALTER DATABASE %I SET jit = off', current_database());
END
$$;
