"""Folding: the AlphaFold2 weights and the model that uses them."""
