"""PyFlink wiring of the three jobs; the logic they call lives in pyflink-free modules."""
