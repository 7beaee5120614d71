{#-
    Gold holds exactly silver's valid transactions: same number of rows and same total amount (with the
    unique tests on both keys, a missing or extra row cannot hide). Two aggregate scans, no join: a cheap
    guard for the incremental logic (merge + delete post-hook) of fct_transactions.
-#}

with

silver as (

    select count(*) as row_count, coalesce(sum(amount), 0) as total_amount
    from {{ ref('stg_transactions') }}
    where is_valid

),

gold as (

    select count(*) as row_count, coalesce(sum(amount), 0) as total_amount
    from {{ ref('fct_transactions') }}

)

select
    silver.row_count as silver_rows,
    gold.row_count as gold_rows,
    silver.total_amount as silver_amount,
    gold.total_amount as gold_amount
from silver
cross join gold
where silver.row_count <> gold.row_count
    or silver.total_amount <> gold.total_amount
