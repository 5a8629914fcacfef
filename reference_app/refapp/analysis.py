"""The CPU work behind the analyse and render jobs: pure functions of the submission text.

Real work rather than a sleep, so a load test sees worker CPU saturate the way a real
text-processing queue does; `work_factor` (env ANALYSIS_WORK_FACTOR, sha256 rounds; about
0.4 s per million on one core here) tunes the cost per job without changing the results
the tests check, except the digest."""

from __future__ import annotations

import hashlib
import html
import re
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

# Letters and digits, with inner apostrophes kept ("don't" is one word, as a reader counts it).
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
# A sentence ends at a run of terminal punctuation; text without any is one sentence.
_SENTENCE_END = re.compile(r"[.!?]+")
_VOWEL_GROUPS = re.compile(r"[aeiouy]+")

STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing don't down during each few
    for from further had has have having he her here hers herself him himself his how i if
    in into is it it's its itself just me more most my myself no nor not now of off on once
    only or other our ours ourselves out over own same she should so some such than that
    the their theirs them themselves then there these they this those through to too under
    until up very was we were what when where which while who whom why will with would you
    your yours yourself yourselves
    """.split()  # noqa: SIM905 (a word list reads better as prose-width lines)
)


@dataclass(frozen=True)
class Analysis:
    word_count: int
    unique_words: int
    top_terms: list[tuple[str, int]]
    readability: float
    digest: str

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["top_terms"] = [[term, count] for term, count in self.top_terms]
        return data


def tokenize(text: str) -> list[str]:
    """Lower-cased words, in order."""
    return _WORD.findall(text.lower())


def sentence_count(text: str) -> int:
    """Sentences that contain at least one word; at least 1 when the text has words."""
    parts = [p for p in _SENTENCE_END.split(text) if _WORD.search(p)]
    return max(1, len(parts)) if _WORD.search(text) else 0


def syllables(word: str) -> int:
    """English syllables by the usual heuristic: vowel groups, less a silent final "e"
    (but "-le" after a consonant is sounded, as in "table"); never below one."""
    word = word.lower().strip("'")
    count = len(_VOWEL_GROUPS.findall(word))
    if word.endswith("e") and not (
        word.endswith("le") and len(word) > 2 and word[-3] not in "aeiouy"
    ):
        count -= 1
    return max(1, count)


def flesch_reading_ease(text: str) -> float:
    """206.835 - 1.015 × words/sentence - 84.6 × syllables/word; 0.0 for text without
    words (the formula is undefined there, and 0 reads as "hard", which is safe)."""
    words = tokenize(text)
    if not words:
        return 0.0
    sentences = sentence_count(text)
    total_syllables = sum(syllables(w) for w in words)
    return 206.835 - 1.015 * (len(words) / sentences) - 84.6 * (total_syllables / len(words))


def top_terms(words: list[str], n: int = 10) -> list[tuple[str, int]]:
    """The n most frequent words, stopwords, single letters and numbers left out; ties in
    alphabetical order so the result is deterministic."""
    counts = Counter(w for w in words if w not in STOPWORDS and len(w) > 1 and not w.isdigit())
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:n]


def digest(text: str, rounds: int = 1) -> str:
    """sha256 of the UTF-8 text, re-hashed until `rounds` hashes have been computed."""
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    value = hashlib.sha256(text.encode()).digest()
    for _ in range(rounds - 1):
        value = hashlib.sha256(value).digest()
    return value.hex()


def analyse(text: str, work_factor: int = 1) -> Analysis:
    words = tokenize(text)
    return Analysis(
        word_count=len(words),
        unique_words=len(set(words)),
        top_terms=top_terms(words),
        readability=round(flesch_reading_ease(text), 2),
        digest=digest(text, max(1, work_factor)),
    )


def render_report(title: str, result: Analysis) -> str:
    """A small standalone HTML report; every value from the submission is escaped."""
    rows = "\n".join(
        f"      <tr><td>{html.escape(term)}</td><td>{count}</td></tr>"
        for term, count in result.top_terms
    )
    safe_title = html.escape(title)
    return f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Report: {safe_title}</title></head>
<body>
  <h1>{safe_title}</h1>
  <dl>
    <dt>Words</dt><dd>{result.word_count}</dd>
    <dt>Unique words</dt><dd>{result.unique_words}</dd>
    <dt>Flesch reading ease</dt><dd>{result.readability:.2f}</dd>
    <dt>Digest</dt><dd><code>{html.escape(result.digest)}</code></dd>
  </dl>
  <table>
    <thead><tr><th>Term</th><th>Count</th></tr></thead>
    <tbody>
{rows}
    </tbody>
  </table>
</body>
</html>
"""
