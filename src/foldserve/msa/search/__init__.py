"""MSA search: building the alignment from a sequence, on CPU, before any GPU step."""
