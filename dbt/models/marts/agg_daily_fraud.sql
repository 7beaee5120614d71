{#-
    Fraud per UTC day (of the transaction): ground truth from the generator vs the detector's alerts,
    with precision and recall. Rebuilt from the facts each run, so it always equals a full refresh.
-#}

with

transactions as (

    select * from {{ ref('fct_transactions') }}

),

alerts as (

    select * from {{ ref('fct_fraud_alerts') }}

),

transactions_with_alerts as (

    select
        transactions.event_date,
        transactions.amount,
        transactions.is_fraud_truth,
        alerts.transaction_id is not null as is_alerted,
        alerts.fraud_score,
        alerts.severity
    from transactions
    left join alerts on transactions.transaction_id = alerts.transaction_id

),

aggregated as (

    select
        event_date as fraud_date,
        count(*) as transaction_count,
        sum(amount) as total_amount,
        count(*) filter (where is_fraud_truth) as fraud_truth_count,
        coalesce(sum(amount) filter (where is_fraud_truth), 0) as fraud_truth_amount,
        count(*) filter (where is_alerted) as alert_count,
        coalesce(sum(amount) filter (where is_alerted), 0) as alerted_amount,
        count(*) filter (where is_alerted and severity = 'high') as high_severity_alert_count,
        count(*) filter (where is_alerted and is_fraud_truth) as true_positive_count,
        count(*) filter (where is_alerted and not is_fraud_truth) as false_positive_count,
        count(*) filter (where not is_alerted and is_fraud_truth) as false_negative_count,
        round(avg(fraud_score)::numeric, 4) as avg_fraud_score
    from transactions_with_alerts
    group by event_date

),

final as (

    select
        *,
        round(true_positive_count::numeric / nullif(alert_count, 0), 4) as alert_precision,
        round(true_positive_count::numeric / nullif(fraud_truth_count, 0), 4) as alert_recall
    from aggregated

)

select * from final
