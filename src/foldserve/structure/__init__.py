"""Protein structures: writing predicted models with their confidences; later reading, metrics."""
