"""Customer text the API must take as it is: right-to-left scripts, bidi marks, emoji, tabs
and newlines (the text rule's unit tests and the HTTP tests use the same samples)."""

from __future__ import annotations

ACCEPTED = [
    "مرحبا، هل أنتم مفتوحون يوم السبت؟",  # Arabic
    "שלום \u200f(RTL mark)\u200e \u202eevil\u202c \u2067isolate\u2069",  # Hebrew and bidi marks
    "tab\tnew\nline\r\nzero\u200dwidth 👩‍🔧 café",
]
