"""English text normalisation and word error rate, for tests, the demo and benchmarks.

Scoring must not punish "10" against "ten" or "Mr." against "mister": both sides are lowercased,
stripped of punctuation, numbers spelled out and common abbreviations expanded before the
word-level edit distance is taken.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred"))

_ABBREVIATIONS = {
    "mr": "mister",
    "mrs": "missus",
    "ms": "miss",
    "dr": "doctor",
    "st": "saint",
    "vs": "versus",
    "etc": "et cetera",
    "ok": "okay",
}
_CONTRACTIONS = {
    "won't": "will not",
    "can't": "can not",
    "cannot": "can not",
    "n't": " not",
    "'re": " are",
    "'ll": " will",
    "'ve": " have",
    "'m": " am",
    "'d": " would",
}


def number_to_words(n: int) -> str:
    """Spell out a non-negative integer in English ("twenty one", "one hundred five")."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + ("" if ones == 0 else " " + _ONES[ones])
    for scale, name in _SCALES:
        if n >= scale:
            high, rest = divmod(n, scale)
            head = f"{number_to_words(high)} {name}"
            return head if rest == 0 else f"{head} {number_to_words(rest)}"
    raise AssertionError("unreachable")


def _spell_number(match: re.Match[str]) -> str:
    token = match.group(0).replace(",", "")
    if "." in token:
        whole, frac = token.split(".", 1)
        return f"{number_to_words(int(whole or 0))} point " + " ".join(_ONES[int(d)] for d in frac)
    return number_to_words(int(token))


def normalize(text: str) -> str:
    """Lowercase, expand contractions, abbreviations and numbers; drop punctuation."""
    text = text.lower().replace("\u2019", "'")
    text = re.sub(r"(\d)%", r"\1 percent", text)
    text = re.sub(r"\$(\d[\d,]*(?:\.\d+)?)", r"\1 dollars", text)
    text = re.sub(r"(?<![\w.])\d[\d,]*(?:\.\d+)?", _spell_number, text)
    text = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", text)
    for short, full in _CONTRACTIONS.items():
        text = text.replace(short, full)
    text = re.sub("[-\u2013\u2014/]", " ", text)
    text = re.sub(r"[^\w\s']", " ", text)
    text = text.replace("'", "")
    words = [_ABBREVIATIONS.get(w, w) for w in text.split()]
    return " ".join(words)


def _edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


@dataclass(frozen=True)
class WerResult:
    """Corpus word error rate: edits over reference words."""

    errors: int
    ref_words: int

    @property
    def wer(self) -> float:
        return self.errors / self.ref_words if self.ref_words else 0.0


def wer(refs: Iterable[str], hyps: Iterable[str]) -> WerResult:
    """Corpus-level WER of paired references and hypotheses, after :func:`normalize`."""
    errors = words = 0
    for ref, hyp in zip(refs, hyps, strict=True):
        r, h = normalize(ref).split(), normalize(hyp).split()
        errors += _edit_distance(r, h)
        words += len(r)
    return WerResult(errors, words)
