"""Benchmarks behind the figures in README and the tuned defaults (guard, classifier, drafter's
escalation threshold, safety detector). Each prints one JSON document; run one as
``python evals/benchmarks/<name>.py`` or ``python -m evals.benchmarks.<name>``."""
