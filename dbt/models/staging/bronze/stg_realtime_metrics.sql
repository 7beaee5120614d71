{#-
    The realtime_aggregator's one-minute windows, typed and renamed. A view: the table is small
    (one row per store and minute) and the job keeps upserting open windows.
-#}

with

source as (

    select * from {{ source('bronze', 'realtime_metrics') }}

),

renamed as (

    select
        window_start,
        window_end,
        store_id,
        store_id = '__all__' as is_overall,
        txn_count as transaction_count,
        amount_sum as total_amount,
        alert_count,
        updated_at
    from source

)

select * from renamed
