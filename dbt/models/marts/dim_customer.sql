{#- One row per customer seen in a valid transaction, with lifetime behaviour and a risk tier. -#}

with

customer_stats as (

    select * from {{ ref('int_customer_stats') }}

),

final as (

    select
        customer_id,
        first_transaction_at,
        last_transaction_at,
        transaction_count,
        total_amount,
        avg_amount,
        max_amount,
        card_count,
        store_count,
        category_count,
        round(online_transaction_count::numeric / transaction_count, 4) as online_share,
        fraud_truth_count,
        alert_count,
        round(alert_count::numeric / transaction_count, 4) as alert_rate,
        max_fraud_score,
        case
            when alert_count >= 3 or max_fraud_score >= 0.9 then 'high'
            when alert_count >= 1 then 'medium'
            else 'low'
        end as risk_tier
    from customer_stats

)

select * from final
