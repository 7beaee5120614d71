{#-
    Per-customer behaviour over every valid transaction, with the fraud alerts raised on them. Rebuilt
    as a table each run (one grouped scan of silver), so it always equals a full refresh.
-#}

with

transactions as (

    select * from {{ ref('stg_transactions') }}
    where is_valid

),

alerts as (

    -- the alert gold keeps per transaction: the latest valid one
    select distinct on (transaction_id)
        transaction_id,
        fraud_score
    from {{ ref('stg_fraud_alerts') }}
    where is_valid
    order by transaction_id, detected_at desc, alert_id desc

),

transactions_with_alerts as (

    select
        transactions.customer_id,
        transactions.card_id,
        transactions.store_id,
        transactions.store_category,
        transactions.channel,
        transactions.amount,
        transactions.event_time,
        transactions.is_fraud_truth,
        alerts.fraud_score,
        alerts.transaction_id is not null as is_alerted
    from transactions
    left join alerts on transactions.transaction_id = alerts.transaction_id

),

aggregated as (

    select
        customer_id,
        min(event_time) as first_transaction_at,
        max(event_time) as last_transaction_at,
        count(*) as transaction_count,
        sum(amount) as total_amount,
        round(avg(amount), 2) as avg_amount,
        max(amount) as max_amount,
        count(distinct card_id) as card_count,
        count(distinct store_id) as store_count,
        count(distinct store_category) as category_count,
        count(*) filter (where channel = 'online') as online_transaction_count,
        count(*) filter (where is_fraud_truth) as fraud_truth_count,
        count(*) filter (where is_alerted) as alert_count,
        max(fraud_score) as max_fraud_score
    from transactions_with_alerts
    group by customer_id

)

select * from aggregated
