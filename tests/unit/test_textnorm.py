"""Normalisation and WER: what every accuracy number in the project is computed with."""

from __future__ import annotations

import pytest

from voxrelay.textnorm import normalize, number_to_words, wer


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "zero"),
        (13, "thirteen"),
        (40, "forty"),
        (21, "twenty one"),
        (105, "one hundred five"),
        (2026, "two thousand twenty six"),
        (3_000_000, "three million"),
    ],
)
def test_number_to_words(n: int, words: str) -> None:
    assert number_to_words(n) == words


def test_normalize_removes_surface_differences() -> None:
    assert normalize("Go forward 10 meters.") == "go forward ten meters"
    assert normalize("And Mr. John Dashwood") == "and mister john dashwood"
    assert normalize("It's 50% off, isn't it?") == "its fifty percent off is not it"
    assert normalize("one-two") == "one two"


def test_wer_counts_edits_over_reference_words() -> None:
    assert wer(["one two three"], ["1, 2, 3."]).wer == 0.0
    result = wer(["a b c d", "e f"], ["a x c", "e f g"])
    assert (result.errors, result.ref_words) == (3, 6)
    assert result.wer == 0.5
    with pytest.raises(ValueError):
        wer(["a"], [])
