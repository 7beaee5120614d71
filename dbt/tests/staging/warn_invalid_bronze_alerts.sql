{{ config(severity='warn') }}

{#- Reports the bronze fraud alerts silver flagged as invalid, with why (visible, not failing). -#}

select alert_id, transaction_id, invalid_reason, detected_at
from {{ ref('stg_fraud_alerts') }}
where not is_valid
