{#-
    Gold facts never hold a non-positive (or missing) amount. (Aggregates and dimensions have their own
    accepted_range tests; this test's parents end in fct_fraud_alerts, so it runs with that model.)
-#}

select 'fct_transactions' as model, transaction_id, amount
from {{ ref('fct_transactions') }}
where amount is null or amount <= 0

union all

select 'fct_fraud_alerts', transaction_id, amount
from {{ ref('fct_fraud_alerts') }}
where amount is null or amount <= 0
