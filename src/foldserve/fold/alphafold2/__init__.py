"""The AlphaFold2 engine: DeepMind's networks through ColabFold's code, kept warm.

:class:`~foldserve.fold.alphafold2.predictor.Predictor` is the ``alphafold2``
:class:`~foldserve.fold.engine.Engine`: the monomer pTM models for one chain, AlphaFold2-multimer
v3 for a complex, templates for the models that take them. Importing this package is cheap.
"""
