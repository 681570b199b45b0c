"""Multi-step runs on top of a prediction: comparison, report, resumable pipeline, run records."""
