"""StreamFlow's PyFlink application: three jobs (``jobs/``) over pure, pyflink-free logic.

``events`` (parsing + validation), ``detection`` (state, rules, model scoring, combination),
``windows`` (reference window aggregation) and ``model`` (training + artifact) import only numpy,
scikit-learn and jsonschema, so they are unit-tested in milliseconds; ``jobs/`` wires them to Flink.
"""
