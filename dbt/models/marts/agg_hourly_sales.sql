{#-
    Sales per UTC hour and store. A table rebuilt from the facts each run (a single grouped scan), so an
    incremental run after late data gives exactly the numbers of a full refresh.
-#}

with

transactions as (

    select * from {{ ref('fct_transactions') }}

),

alerts as (

    select * from {{ ref('fct_fraud_alerts') }}

),

stores as (

    select * from {{ ref('dim_store') }}

),

transactions_with_alerts as (

    select
        transactions.event_hour,
        transactions.event_date,
        transactions.store_id,
        transactions.customer_id,
        transactions.channel,
        transactions.amount,
        transactions.is_fraud_truth,
        alerts.transaction_id is not null as is_alerted
    from transactions
    left join alerts on transactions.transaction_id = alerts.transaction_id

),

aggregated as (

    select
        event_hour as sales_hour,
        event_date as sales_date,
        store_id,
        count(*) as transaction_count,
        count(distinct customer_id) as customer_count,
        sum(amount) as total_amount,
        round(avg(amount), 2) as avg_amount,
        max(amount) as max_amount,
        count(*) filter (where channel = 'online') as online_transaction_count,
        count(*) filter (where is_fraud_truth) as fraud_truth_count,
        count(*) filter (where is_alerted) as alert_count,
        coalesce(sum(amount) filter (where is_alerted), 0) as alerted_amount
    from transactions_with_alerts
    group by event_hour, event_date, store_id

),

final as (

    select
        aggregated.sales_hour,
        aggregated.sales_date,
        aggregated.store_id,
        stores.store_category,
        aggregated.transaction_count,
        aggregated.customer_count,
        aggregated.total_amount,
        aggregated.avg_amount,
        aggregated.max_amount,
        aggregated.online_transaction_count,
        aggregated.fraud_truth_count,
        aggregated.alert_count,
        aggregated.alerted_amount
    from aggregated
    left join stores on aggregated.store_id = stores.store_id

)

select * from final
