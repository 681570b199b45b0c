"""The OpenFold3 engine: the ``openfold3`` package's own model and data pipeline, kept warm.

Importing this package is cheap; PyTorch and OpenFold3 are imported by :mod:`.engine` and
:mod:`.test_weights` only (the ``foldserve[openfold3]`` extra).
"""
