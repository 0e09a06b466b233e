"""The eval suites by name: what ``deskgraph eval <suite>`` runs, and what ``eval all`` runs.

Each suite lives in its own module under ``evals/suites``; :data:`SUITES` is the one place that
names them, in the order ``eval all`` runs them. A suite's entry says how to run it
(``run(services, **options)``, returning its :class:`~evals.core.RunRecord`), with which options
``eval all`` runs it on the demo tenant, and which runs ``eval all --datasets`` adds on the
shared datasets. Its command line options are in ``cli/evaluate.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evals.core import RunRecord
from evals.suites.answers import answers_run
from evals.suites.escalation import escalation_run
from evals.suites.guardrails import guardrails_run
from evals.suites.intents import intents_run
from evals.suites.retrieval import retrieval_run
from graph.services import Services

Job = Callable[[Services], Awaitable[RunRecord]]
"""One run, ready but for its services (the eval database's)."""


@dataclass(frozen=True)
class SharedDatasets:
    """The shared datasets folder (``../shared/datasets``) and the files ``eval all`` reads."""

    root: Path

    @property
    def galaxy_kb(self) -> Path:
        """Galaxy S10 sections, one passage per record."""
        return self.root / "kb" / "galaxy_s10" / "sections.jsonl"

    @property
    def galaxy_questions(self) -> Path:
        """Galaxy S10 questions, gold ids the sections."""
        return self.root / "kb" / "galaxy_s10" / "questions.jsonl"

    @property
    def mtrag(self) -> Path:
        """MTRAG conversations (dev)."""
        return self.root / "rag" / "mtrag" / "dev.jsonl"

    @property
    def attacks(self) -> Path:
        """Adversarial inputs (dev)."""
        return self.root / "guard" / "attacks_dev.jsonl"

    @property
    def bitext(self) -> tuple[Path, Path]:
        """Bitext intents: train, dev."""
        folder = self.root / "intents" / "bitext"
        return folder / "train.csv", folder / "dev.csv"

    @property
    def banking77(self) -> Path:
        """BANKING77 intents (a training file only)."""
        return self.root / "intents" / "banking77" / "train.csv"

    @property
    def clinc150(self) -> tuple[Path, Path]:
        """CLINC150 intents: train, val."""
        folder = self.root / "intents" / "clinc150"
        return folder / "train.jsonl", folder / "val.jsonl"

    def check(self) -> None:
        """Check that every file ``eval all`` reads is there.

        Raises:
            FileNotFoundError: some are not (the message names them all).
        """
        needed = (
            self.galaxy_kb,
            self.galaxy_questions,
            self.mtrag,
            self.attacks,
            *self.bitext,
            self.banking77,
            *self.clinc150,
        )
        missing = [str(p) for p in needed if not p.is_file()]
        if missing:
            raise FileNotFoundError(
                f"not in {self.root} (is it the shared datasets folder?): {', '.join(missing)}"
            )


Options = dict[str, Any]


def _none(_: SharedDatasets) -> list[Options]:
    return []


@dataclass(frozen=True)
class Suite:
    """One eval suite as ``deskgraph eval`` sees it."""

    name: str
    run: Callable[..., Awaitable[RunRecord]]
    """``run(services, **options)``: the suite end to end (tenant set up, run, recorded)."""
    demo: Mapping[str, Any] = field(default_factory=dict)
    """Options of its run on the demo tenant in ``eval all`` (offline: no judge model)."""
    shared: Callable[[SharedDatasets], Sequence[Options]] = _none
    """Options of each of its runs on the shared datasets in ``eval all --datasets``."""

    def job(self, options: Mapping[str, Any]) -> Job:
        """A run of this suite with ``options``."""
        return lambda services: self.run(services, **options)


SUITES: dict[str, Suite] = {
    s.name: s
    for s in (
        Suite(
            "retrieval",
            retrieval_run,
            shared=lambda d: [{"kb": d.galaxy_kb, "questions": d.galaxy_questions}],
        ),
        Suite(
            "answers",
            answers_run,
            demo={"judge": False},
            shared=lambda d: [
                {"kb": d.galaxy_kb, "questions": d.galaxy_questions, "judge": False},
                {"mtrag_path": d.mtrag, "judge": False},
            ],
        ),
        Suite("escalation", escalation_run, shared=lambda d: [{"mtrag_path": d.mtrag}]),
        Suite(
            "intents",
            intents_run,
            shared=lambda d: [
                {"train": d.bitext[0], "test": d.bitext[1]},
                {"train": d.banking77, "split": 5},
                {"train": d.clinc150[0], "test": d.clinc150[1], "oos_label": "oos"},
            ],
        ),
        Suite(
            "guardrails",
            guardrails_run,
            shared=lambda d: [{"attacks": [d.attacks], "benign": [d.bitext[1], d.clinc150[1]]}],
        ),
    )
}
"""Every suite, by name, in the order ``eval all`` runs them."""


def plan_all(datasets: Path | None) -> list[Job]:
    """Every offline suite on the demo tenant, then (with ``datasets``) on the shared sets.

    ``datasets`` is the shared datasets folder (``../shared/datasets``): Galaxy S10 retrieval
    and answers, MTRAG answers and escalation, Bitext / BANKING77 / CLINC150 intents, and the
    adversarial inputs against Bitext and CLINC150 messages.

    Raises:
        FileNotFoundError: a file the shared runs read is not in ``datasets``.
    """
    jobs = [suite.job(suite.demo) for suite in SUITES.values()]
    if datasets is None:
        return jobs
    shared = SharedDatasets(datasets)
    shared.check()
    return jobs + [suite.job(o) for suite in SUITES.values() for o in suite.shared(shared)]
