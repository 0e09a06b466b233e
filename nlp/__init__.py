"""The offline language pieces: intent classifier, input guard, embeddings, text helpers, model
builders.

Below the state machine: ``graph`` uses this package, and this package imports nothing of
``graph``, ``api``, ``evals`` or ``kb_pipeline`` (only ``helpdesk``, for settings and policy).
"""
