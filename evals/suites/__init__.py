"""The eval suites, one module each (``evals.registry`` names them for ``deskgraph eval``).

Each module holds its suite whole: what it reads, how it scores, and the ``*_run`` function that
sets up its tenant, runs it and returns the :class:`~evals.core.RunRecord`.
"""
