{#-
    Casts that never raise: bronze may hold malformed payloads, and one bad row must not fail a build.
    Each macro returns NULL when the input cannot be converted; callers flag the row (invalid_reason).
    Postgres does not guarantee evaluation order inside AND/OR, so guards are nested CASEs.
-#}

{#- Trimmed text, NULL when missing or blank. -#}
{% macro clean_text(expression) -%}
    nullif(btrim({{ expression }}), '')
{%- endmacro %}

{#- A jsonb value (payload -> 'key') as numeric: JSON numbers, or strings that look like a decimal number. -#}
{% macro jsonb_to_numeric(jsonb_expression) -%}
    case jsonb_typeof({{ jsonb_expression }})
        when 'number' then ({{ jsonb_expression }})::numeric
        when 'string' then
            case
                when ({{ jsonb_expression }} #>> '{}') ~ '^\s*[-+]?[0-9]{1,15}(\.[0-9]{1,15})?\s*$'
                    then btrim({{ jsonb_expression }} #>> '{}')::numeric
            end
    end
{%- endmacro %}

{#- A jsonb value as double precision, only when it is a JSON number of sane magnitude. -#}
{% macro jsonb_to_double(jsonb_expression) -%}
    case
        when jsonb_typeof({{ jsonb_expression }}) = 'number' then
            case
                when abs(({{ jsonb_expression }})::numeric) < 1e15
                    then ({{ jsonb_expression }})::numeric::double precision
            end
    end
{%- endmacro %}

{#- A jsonb value as boolean, only for JSON true/false. -#}
{% macro jsonb_to_boolean(jsonb_expression) -%}
    case when jsonb_typeof({{ jsonb_expression }}) = 'boolean' then ({{ jsonb_expression }})::boolean end
{%- endmacro %}

{#- A jsonb value as a small integer (schema_version and the like). -#}
{% macro jsonb_to_int(jsonb_expression) -%}
    case
        when jsonb_typeof({{ jsonb_expression }}) = 'number' then
            case
                when ({{ jsonb_expression }})::numeric between -2147483648 and 2147483647
                    and ({{ jsonb_expression }})::numeric = trunc(({{ jsonb_expression }})::numeric)
                    then ({{ jsonb_expression }})::numeric::integer
            end
    end
{%- endmacro %}

{#-
    ISO-8601 text ('2026-11-22T07:00:00.123Z', offset or no zone = UTC) as timestamptz. The regex pins
    every field to its range and the nested CASE rejects days past the end of their month, so the final
    cast cannot fail.
-#}
{% macro safe_iso_timestamptz(text_expression) -%}
    case
        when {{ text_expression }} ~ '^[12][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?(Z|z|[+-]([01][0-9]|2[0-3])(:?[0-5][0-9])?)?$' then
            case
                when substr({{ text_expression }}, 9, 2)::integer <= extract(day from (
                        make_date(substr({{ text_expression }}, 1, 4)::integer, substr({{ text_expression }}, 6, 2)::integer, 1)
                        + interval '1 month - 1 day'))::integer
                    then (
                        case
                            when {{ text_expression }} ~ '(Z|z|[+-][0-9:]{2,5})$' then {{ text_expression }}
                            else {{ text_expression }} || 'Z'
                        end
                    )::timestamptz
            end
    end
{%- endmacro %}
