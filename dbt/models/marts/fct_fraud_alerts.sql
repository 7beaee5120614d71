{{
    config(
        materialized='incremental',
        incremental_strategy='merge',
        unique_key='transaction_id',
        on_schema_change='append_new_columns',
        indexes=[
            {'columns': ['transaction_id'], 'unique': true},
        ],
        post_hook=[
            "delete from {{ this }} as facts
             where not exists (
                     select 1 from {{ ref('stg_fraud_alerts') }} as alerts
                     where alerts.alert_id = facts.alert_id and alerts.is_valid)
                or not exists (
                     select 1 from {{ ref('fct_transactions') }} as transactions
                     where transactions.transaction_id = facts.transaction_id)",
        ],
    )
}}

{#-
    One row per alerted valid transaction (its latest valid alert), enriched with the transaction.
    An alert whose transaction is not in gold yet waits in silver and joins when the transaction
    arrives: the incremental run revisits every transaction whose alerts or fact row changed since
    the last run.
-#}

with

{% if is_incremental() %}
changed_transactions as (

    select transaction_id from {{ ref('stg_fraud_alerts') }}
    where {{ loaded_after('_loaded_at', '_alert_silver_loaded_at') }}

    union

    select transaction_id from {{ ref('fct_transactions') }}
    where {{ loaded_after('_loaded_at', '_transaction_loaded_at') }}

),
{% endif %}

alerts as (

    select distinct on (transaction_id) *
    from {{ ref('stg_fraud_alerts') }}
    where is_valid
    {% if is_incremental() %}
        and transaction_id in (select transaction_id from changed_transactions)
    {% endif %}
    order by transaction_id, detected_at desc, alert_id desc

),

transactions as (

    select * from {{ ref('fct_transactions') }}

),

final as (

    select
        alerts.alert_id,
        alerts.transaction_id,
        alerts.customer_id,
        transactions.store_id,
        transactions.store_category,
        transactions.channel,
        transactions.amount,
        transactions.currency,
        transactions.event_time,
        transactions.event_date,
        alerts.fraud_score,
        alerts.model_score,
        alerts.rules_fired,
        alerts.rule_count,
        alerts.model_version,
        case
            when alerts.fraud_score >= 0.9 then 'high'
            when alerts.fraud_score >= 0.8 then 'medium'
            else 'low'
        end as severity,
        transactions.is_fraud_truth,
        transactions.fraud_pattern,
        alerts.detected_at,
        extract(epoch from alerts.detected_at - transactions.event_time)::double precision
            as detection_latency_seconds,
        alerts._loaded_at as _alert_silver_loaded_at,
        transactions._loaded_at as _transaction_loaded_at,
        current_timestamp as _loaded_at
    from alerts
    inner join transactions on alerts.transaction_id = transactions.transaction_id

)

select * from final
