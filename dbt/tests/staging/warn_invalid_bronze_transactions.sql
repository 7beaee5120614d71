{{ config(severity='warn') }}

{#-
    Reports the bronze transactions silver flagged as invalid (is_valid = false), with why. A warning,
    not an error: bad input is expected now and then, is kept out of gold, and must stay visible.
-#}

select transaction_id, invalid_reason, ingested_at
from {{ ref('stg_transactions') }}
where not is_valid
