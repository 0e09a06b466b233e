"""Evaluation suites (ragas), runners and reports."""
