"""What the safety tests expect: the demo gas article's steps, sent word for word, and one
labelled phrasing per hazard (detected without a model, and handed off with the steps)."""

from __future__ import annotations

GAS_STEPS = [
    "1. Get everyone out of the house, including pets. Leave the door open behind you.",
    "4. Call the gas utility. From outside, call Tri-County Gas's 24-hour emergency line at "
    "555-0160, or 911. The utility responds to gas leaks at no charge.",
    "5. Stay out until the utility or the fire department tells you it's safe to go back in.",
]
SAFETY_PHRASINGS = [
    ("I smell gas in my kitchen", "gas"),
    ("it smells like rotten eggs by the stove", "gas"),
    ("My CO alarm is going off", "carbon_monoxide"),
    ("a pipe burst and water is pouring through the ceiling", "flooding"),
    ("the outlet is sparking", "electrical"),
    ("smoke is coming out of the furnace", "fire"),
    ("my husband fell off the ladder and is unconscious", "injury"),
]
