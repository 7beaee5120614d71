"""Airflow operators and sensors the provider packages lack (apply semantics, a real "running" check)."""
