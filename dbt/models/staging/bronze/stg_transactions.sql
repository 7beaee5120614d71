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
    )
}}

{#-
    One row per bronze transaction (valid or not), typed. Nothing is dropped here: a row that breaks the
    contract is kept with is_valid = false and the reasons in invalid_reason, and gold filters on is_valid.
    Every cast is guarded (macros/safe_casts.sql), so a malformed payload cannot fail the build.
-#}

with

source as (

    select * from {{ source('bronze', 'raw_transactions') }}
    {% if is_incremental() %}
    where {{ lookback_filter('ingested_at') }}
    {% endif %}

),

deduplicated as (

    -- bronze's primary key already makes transaction_id unique; this keeps the contract if bronze is
    -- ever loaded append-only (latest ingestion wins).
    select distinct on (transaction_id) *
    from source
    order by transaction_id, ingested_at desc, kafka_offset desc

),

-- `materialized`: each payload field is extracted and cast once per row. Inlined, Postgres would
-- re-evaluate the guarded casts at every later reference (3x slower on a full build).
extracted as materialized (

    select
        transaction_id,
        jsonb_typeof(payload) = 'object' as is_payload_object,
        {{ clean_text("payload ->> 'transaction_id'") }} as payload_transaction_id,
        {{ clean_text("payload ->> 'customer_id'") }} as customer_id,
        {{ clean_text("payload ->> 'card_id'") }} as card_id,
        {{ clean_text("payload ->> 'store_id'") }} as store_id,
        lower({{ clean_text("payload ->> 'store_category'") }}) as store_category,
        lower({{ clean_text("payload ->> 'channel'") }}) as channel,
        upper({{ clean_text("payload ->> 'currency'") }}) as currency,
        {{ jsonb_to_numeric("payload -> 'amount'") }} as amount_numeric,
        coalesce(event_time, {{ safe_iso_timestamptz("btrim(payload ->> 'event_time')") }}) as event_time,
        {{ jsonb_to_double("payload -> 'lat'") }} as lat,
        {{ jsonb_to_double("payload -> 'lon'") }} as lon,
        payload ? 'lat' or payload ? 'lon' as has_location,
        {{ jsonb_to_boolean("payload -> 'is_fraud_truth'") }} as is_fraud_truth,
        {{ clean_text("payload ->> 'fraud_pattern'") }} as fraud_pattern,
        {{ jsonb_to_int("payload -> 'schema_version'") }} as schema_version,
        kafka_topic,
        kafka_partition,
        kafka_offset,
        ingested_at
    from deduplicated

),

typed as materialized (

    select
        *,
        case
            when abs(amount_numeric) < 1e15 then round(amount_numeric, 2)
        end::numeric(18, 2) as amount
    from extracted

),

checked as (

    select
        *,
        nullif(concat_ws(',',
            case when not is_payload_object then 'payload_not_object' end,
            case when payload_transaction_id is null then 'missing_transaction_id' end,
            case when payload_transaction_id <> transaction_id then 'transaction_id_mismatch' end,
            case when customer_id is null then 'missing_customer_id' end,
            case when store_id is null then 'missing_store_id' end,
            case when amount_numeric is null then 'invalid_amount' end,
            case when amount <= 0 then 'non_positive_amount' end,
            case
                when amount_numeric is not null and (amount is null or amount > {{ var('max_valid_amount') }})
                    then 'amount_out_of_range'
            end,
            case when event_time is null then 'invalid_event_time' end,
            case
                when event_time > ingested_at + interval '{{ var("max_clock_skew") }}' then 'future_event_time'
            end,
            case
                when store_category is null
                    or store_category not in ('{{ var("store_categories") | join("', '") }}')
                    then 'invalid_store_category'
            end,
            case
                when channel is null or channel not in ('{{ var("channels") | join("', '") }}')
                    then 'invalid_channel'
            end,
            case when currency is null or currency !~ '^[A-Z]{3}$' then 'invalid_currency' end,
            case
                when fraud_pattern not in ('{{ var("fraud_patterns") | join("', '") }}')
                    then 'invalid_fraud_pattern'
            end,
            case
                when has_location and (
                    lat is null or lon is null or lat not between -90 and 90 or lon not between -180 and 180
                ) then 'invalid_location'
            end,
            case
                when schema_version is null
                    or schema_version not in ({{ var('supported_schema_versions') | join(', ') }})
                    then 'unsupported_schema_version'
            end
        ), '') as invalid_reason
    from typed

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
        case when lat between -90 and 90 then lat end as lat,
        case when lon between -180 and 180 then lon end as lon,
        coalesce(is_fraud_truth, false) as is_fraud_truth,
        fraud_pattern,
        schema_version,
        invalid_reason is null as is_valid,
        invalid_reason,
        kafka_topic,
        kafka_partition,
        kafka_offset,
        ingested_at,
        current_timestamp as _loaded_at
    from checked

)

select * from final
