{#- Every gold alert's fraud score (and model score, when present) is a number in [0, 1]. -#}

select transaction_id, fraud_score, model_score
from {{ ref('fct_fraud_alerts') }}
where fraud_score is null
    or fraud_score = 'NaN'
    or fraud_score not between 0 and 1
    or model_score = 'NaN'
    or model_score not between 0 and 1
