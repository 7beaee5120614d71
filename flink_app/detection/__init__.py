"""Fraud detection logic (pyflink-free): per-customer state, rules, model scoring, combination."""
