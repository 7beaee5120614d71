{#- One row per store seen in a valid transaction: its category, location and lifetime activity. -#}

with

transactions as (

    select * from {{ ref('stg_transactions') }}
    where is_valid

),

aggregated as (

    select
        store_id,
        -- a store has one category in the generator's world; mode() keeps the build total if not
        mode() within group (order by store_category) as store_category,
        round(avg(lat) filter (where channel = 'pos')::numeric, 5) as latitude,
        round(avg(lon) filter (where channel = 'pos')::numeric, 5) as longitude,
        min(event_time) as first_transaction_at,
        max(event_time) as last_transaction_at,
        count(*) as transaction_count,
        sum(amount) as total_amount,
        count(distinct customer_id) as customer_count
    from transactions
    group by store_id

)

select * from aggregated
