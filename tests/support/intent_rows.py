"""Synthetic intent examples: three intents whose messages share keywords, plus off-topic
messages, enough to train the offline classifier in a test."""

from __future__ import annotations

_INTENTS = {
    "billing": ("charge", "invoice", "bill", "payment", "refund", "card"),
    "booking": ("appointment", "visit", "schedule", "book", "technician", "slot"),
    "hours": ("open", "hours", "close", "weekend", "sunday", "holiday"),
}
_FRAMES = (
    "question about my {a} and {b}",
    "help with the {a} {b} please",
    "i need the {a} for the {b}",
    "can you check {a} {b}",
    "{a} {b} problem today",
)
_OFF_TOPIC = (
    "who won the football game",
    "give me a pasta recipe",
    "what is the weather tomorrow",
    "tell me a funny joke",
    "write a poem about cats",
    "best movie this year",
    "how tall is the mountain",
    "translate hello into french",
    "stock market prediction now",
    "homework about planets",
    "recommend a novel to read",
    "song lyrics for karaoke",
)


def synthetic_rows(with_oos: bool = True) -> list[tuple[str, str]]:
    """(text, intent) rows: every frame with every keyword pair, then the off-topic ones as
    ``oos`` unless ``with_oos`` is false."""
    rows = []
    for intent, words in _INTENTS.items():
        for i, frame in enumerate(_FRAMES):
            for j in range(len(words)):
                a, b = words[j], words[(j + i + 1) % len(words)]
                rows.append((frame.format(a=a, b=b), intent))
    if with_oos:
        rows += [(t, "oos") for t in _OFF_TOPIC]
    return rows
