{{
    config(
        materialized='incremental',
        incremental_strategy='merge',
        unique_key='transaction_id',
        on_schema_change='append_new_columns',
        indexes=[
            {'columns': ['transaction_id'], 'unique': true},
            {'columns': ['_loaded_at']},
        ],
        post_hook=[
            "delete from {{ this }} as facts using {{ ref('stg_transactions') }} as staged
             where staged.transaction_id = facts.transaction_id and not staged.is_valid",
        ],
    )
}}

{#-
    One row per valid transaction. Incremental: takes the silver rows (re)written since the newest
    silver load this table has seen and merges them on transaction_id; the post-hook removes a
    transaction whose bronze row was later overwritten by an invalid one, so incremental = full refresh.
-#}

-- built after the dimensions, so the relationships tests that run with this model (Cosmos runs
-- `dbt build` per model) always find them:
-- depends_on: {{ ref('dim_customer') }}
-- depends_on: {{ ref('dim_store') }}

with

transactions as (

    select * from {{ ref('stg_transactions') }}
    where is_valid
    {% if is_incremental() %}
        and {{ loaded_after('_loaded_at', '_silver_loaded_at') }}
    {% endif %}

),

final as (

    select
        transaction_id,
        customer_id,
        card_id,
        store_id,
        store_category,
        channel,
        amount,
        currency,
        event_time,
        (event_time at time zone 'UTC')::date as event_date,
        date_trunc('hour', event_time, 'UTC') as event_hour,
        lat,
        lon,
        is_fraud_truth,
        fraud_pattern,
        ingested_at,
        _loaded_at as _silver_loaded_at,
        current_timestamp as _loaded_at
    from transactions

)

select * from final
