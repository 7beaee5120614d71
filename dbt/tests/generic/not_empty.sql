{#- Fails (one row) when the model has no rows at all. -#}
{% test not_empty(model) %}

select 1 as is_empty
where not exists (select 1 from {{ model }})

{% endtest %}
