{#- Fails (one row) when the newest value of `field` is older than `interval` `datepart`s, or the model is empty. -#}
{% test recency(model, field, datepart, interval) %}

with

newest as (

    select max({{ field }}) as newest_value
    from {{ model }}

)

select newest_value
from newest
where newest_value is null
    or newest_value < current_timestamp - interval '{{ interval }} {{ datepart }}'

{% endtest %}
