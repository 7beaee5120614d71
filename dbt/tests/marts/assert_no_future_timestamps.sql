{#- Nothing in the gold facts happened in the future (beyond the allowed producer clock skew). -#}

{% set horizon = "current_timestamp + interval '" ~ var('max_clock_skew') ~ "'" %}

select 'fct_transactions' as model, transaction_id, event_time as happened_at
from {{ ref('fct_transactions') }}
where event_time > {{ horizon }}

union all

select 'fct_fraud_alerts', transaction_id, greatest(event_time, detected_at)
from {{ ref('fct_fraud_alerts') }}
where event_time > {{ horizon }} or detected_at > {{ horizon }}
