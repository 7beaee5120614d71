{#- Every bronze fraud alert is in silver, valid or flagged (same grace rule as transactions). -#}

with

bronze as (

    select alert_id, detected_at from {{ source('bronze', 'raw_fraud_alerts') }}

),

silver as (

    select alert_id, detected_at from {{ ref('stg_fraud_alerts') }}

),

checked_until as (

    select max(detected_at) - interval '{{ var("reconciliation_grace") }}' as detected_before
    from silver

)

select bronze.alert_id, bronze.detected_at
from bronze
cross join checked_until
left join silver on bronze.alert_id = silver.alert_id
where bronze.detected_at < checked_until.detected_before
    and silver.alert_id is null
