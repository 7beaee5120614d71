"""The IsolationForest model: reproducible training (``train``) and the versioned artifact (``artifact``)."""
