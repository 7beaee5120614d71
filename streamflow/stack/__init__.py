"""The local stack supervisor: start, health-check and stop PostgreSQL, Kafka and Airflow on 127.0.0.1."""
