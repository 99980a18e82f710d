"""The pyannote sample's transcript read into boundaries: a turn end where the other speaker talks next,
a join where the same speaker goes on, with the gap (negative when they overlap)."""

from __future__ import annotations

from bench.pyannote_sample import boundaries

STM = """sample 1 Diane 6.68 7.16 Hello?
sample 1 Sheila 7.634 8.155 Hello?
sample 1 Diane 8.436 8.876 Oh, hello.
sample 1 Diane 8.916 9.798 I didn't know you were there.
sample 1 Sheila 9.70 10.78 Neither did I.
"""


def test_the_transcript_gives_turn_ends_and_joins() -> None:
    found = [(b.speaker, b.text, b.kind, b.gap_ms) for b in boundaries(STM)]
    assert found == [
        ("Diane", "Hello?", "turn end", 474),
        ("Sheila", "Hello?", "turn end", 281),
        ("Diane", "Oh, hello.", "join", 40),
        ("Diane", "I didn't know you were there.", "turn end", -98),
        ("Sheila", "Neither did I.", "turn end", None),
    ]
