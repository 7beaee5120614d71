{#-
    Route models to the warehouse layer of their folder, whatever the target schema is:
      models/staging/**, models/intermediate/**  -> silver
      models/marts/**                            -> gold
    Anything else keeps dbt's default (custom schema if configured, else the target schema). No
    `<target>_<custom>` prefixing: the Flink jobs, the portal and the tests address silver/gold by name.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- set layer_by_folder = {'staging': 'silver', 'intermediate': 'silver', 'marts': 'gold'} -%}
    {%- set folder = node.fqn[1] if (node.fqn | length) > 2 else none -%}
    {%- if node.resource_type in ['model', 'seed', 'snapshot'] and folder in layer_by_folder -%}
        {{ layer_by_folder[folder] }}
    {%- elif custom_schema_name is not none -%}
        {{ custom_schema_name | trim }}
    {%- else -%}
        {{ target.schema }}
    {%- endif -%}
{%- endmacro %}
