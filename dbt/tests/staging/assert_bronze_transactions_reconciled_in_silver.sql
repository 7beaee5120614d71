{#-
    Every bronze transaction is in silver, valid or flagged: nothing is silently dropped. Rows ingested
    within `reconciliation_grace` of the newest silver row may still be in flight and are not checked.
-#}

with

bronze as (

    select transaction_id, ingested_at from {{ source('bronze', 'raw_transactions') }}

),

silver as (

    select transaction_id, ingested_at from {{ ref('stg_transactions') }}

),

checked_until as (

    select max(ingested_at) - interval '{{ var("reconciliation_grace") }}' as ingested_before
    from silver

)

select bronze.transaction_id, bronze.ingested_at
from bronze
cross join checked_until
left join silver on bronze.transaction_id = silver.transaction_id
where bronze.ingested_at < checked_until.ingested_before
    and silver.transaction_id is null
