{{
    config(
        materialized='incremental',
        incremental_strategy='merge',
        unique_key='alert_id',
        on_schema_change='append_new_columns',
        indexes=[
            {'columns': ['alert_id'], 'unique': true},
            {'columns': ['transaction_id']},
            {'columns': ['_loaded_at']},
        ],
    )
}}

{#-
    One row per bronze alert, typed and checked. The fraud_detector's contract is one alert per
    transaction (alert_id = transaction_id); should a transaction ever be alerted twice, gold
    (fct_fraud_alerts) keeps its latest valid alert. Invalid alerts stay here with is_valid = false.
-#}

with

source as (

    select * from {{ source('bronze', 'raw_fraud_alerts') }}
    {% if is_incremental() %}
    where {{ lookback_filter('detected_at') }}
    {% endif %}

),

cleaned as (

    select
        alert_id,
        {{ clean_text('transaction_id') }} as transaction_id,
        {{ clean_text('customer_id') }} as customer_id,
        fraud_score,
        model_score,
        coalesce(rules_fired, '{}'::text[]) as rules_fired,
        {{ clean_text('model_version') }} as model_version,
        event_time,
        detected_at
    from source

),

deduplicated as (

    -- bronze's primary key already makes alert_id unique; kept for append-only loads (latest wins)
    select distinct on (alert_id) *
    from cleaned
    order by alert_id, detected_at desc

),

checked as (

    select
        *,
        nullif(concat_ws(',',
            case when btrim(alert_id) = '' then 'missing_alert_id' end,
            case when transaction_id is null then 'missing_transaction_id' end,
            case when customer_id is null then 'missing_customer_id' end,
            case
                when fraud_score is null or fraud_score = 'NaN' or fraud_score not between 0 and 1
                    then 'fraud_score_out_of_range'
            end,
            case
                when model_score = 'NaN' or model_score not between 0 and 1 then 'model_score_out_of_range'
            end,
            case when event_time is null then 'missing_event_time' end
        ), '') as invalid_reason
    from deduplicated

),

final as (

    select
        alert_id,
        transaction_id,
        customer_id,
        fraud_score,
        model_score,
        rules_fired,
        cardinality(rules_fired) as rule_count,
        model_version,
        event_time,
        detected_at,
        invalid_reason is null as is_valid,
        invalid_reason,
        current_timestamp as _loaded_at
    from checked

)

select * from final
