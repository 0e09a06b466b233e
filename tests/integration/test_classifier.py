"""The ``deskgraph classify`` probe as a real process with the offline MiniLM: it answers each
input line as it arrives, before the end of its input."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

from tests.support.intent_rows import synthetic_rows
from tests.support.paths import ROOT


def test_classify_probe_answers_each_line_as_it_arrives(tmp_path: Path) -> None:
    """The real command, offline MiniLM: one JSON line out per input line, flushed at once."""
    examples = tmp_path / "examples.csv"
    examples.write_text(
        "text,intent\n"
        + "".join(f"{t},{i}\n" for t, i in synthetic_rows())
        + "my bill is wrong,billing\nI was charged twice,billing\nwhen do you open,hours\n",
        encoding="utf-8",
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "classify", "--examples", str(examples), "--jsonl"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    try:
        # Stdin stays open: the answer must come back before the end of input.
        proc.stdin.write("there is a charge on my invoice I did not expect\n")
        proc.stdin.flush()
        first = json.loads(lines.get(timeout=240))
        assert set(first) == {"intent", "confidence", "out_of_scope"}
        assert first["intent"] == "billing" and first["out_of_scope"] is False
        proc.stdin.write('{"text": "are you open on sunday", "intent": "ignored"}\n')
        proc.stdin.write("[1, 2]\n")
        proc.stdin.close()
        second = json.loads(lines.get(timeout=60))
        third = json.loads(lines.get(timeout=60))
        assert second["intent"] == "hours"
        assert 0.0 <= second["confidence"] <= 1.0
        assert third["error"]["code"] == "invalid_item"
        assert proc.wait(timeout=60) == 2  # a bad line makes the exit status 2
    finally:
        if proc.poll() is None:
            proc.kill()
