{#-
    High-water marks for incremental models. All comparisons are against a scalar subquery, which
    Postgres evaluates once (an InitPlan), so the filtered column's index can be used.
-#}

{#- Rows of a bronze source at or after (newest already-loaded value - incremental_lookback). -#}
{% macro lookback_filter(column, this_column=none) -%}
    {{ column }} >= (
        select coalesce(max({{ this_column or column }}), '-infinity'::timestamptz) from {{ this }}
    ) - interval '{{ var("incremental_lookback") }}'
{%- endmacro %}

{#- Rows an upstream model (re)wrote after the newest upstream load time this model has seen. -#}
{% macro loaded_after(column, this_column) -%}
    {{ column }} > (select coalesce(max({{ this_column }}), '-infinity'::timestamptz) from {{ this }})
{%- endmacro %}
