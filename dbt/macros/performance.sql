{#-
    PostgreSQL's JIT compiler costs seconds per query here (LLVM inlining/optimisation of the wide
    payload-parsing expressions, many times more on a busy 2-core host) and saves nothing on queries of
    this size. The platform should set `jit = off` for the warehouse database; these keep dbt fast even
    where it is not:
      - models: `set local jit = off` as the first pre-hook (dbt_project.yml), inside the model's transaction;
      - tests:  the same statement in front of every test query (dbt opens a new connection per node,
                so a session setting would not carry over).
-#}
{% macro disable_jit() -%}
    set local jit = off
{%- endmacro %}

{% macro postgres__get_test_sql(main_sql, fail_calc, warn_if, error_if, limit) -%}
    {{ disable_jit() }};
    {{ dbt.default__get_test_sql(main_sql, fail_calc, warn_if, error_if, limit) }}
{%- endmacro %}

{#-
    Post-hook (outside the transaction) for every table model: `vacuum (analyze)` right after the
    build. A freshly written table has no statistics, no visibility map and no hint bits, so the next
    reader (this run's tests, the next incremental MERGE and its high-water-mark scan) would pay for
    dirtying every page; on an incremental run vacuum only visits the pages the merge touched.
-#}
{% macro vacuum_analyze_this() -%}
    {%- if model.config.materialized in ['table', 'incremental'] -%}
        vacuum (analyze) {{ this }}
    {%- endif -%}
{%- endmacro %}
