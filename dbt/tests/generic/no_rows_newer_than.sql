{#- Returns every row whose `field` lies within the last `interval` `datepart`s: with severity warn, a
    report of what arrived recently (e.g. bronze.sink_rejects), without failing on old, known rows. -#}
{% test no_rows_newer_than(model, field, datepart, interval) %}

select *
from {{ model }}
where {{ field }} >= current_timestamp - interval '{{ interval }} {{ datepart }}'

{% endtest %}
