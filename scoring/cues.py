"""Cue phrases: what a rep reads when a lead's text moves its score.

A text reason quotes a phrase of the lead's own text that carries meaning — ``"budget is
approved"``, ``"decide within 30 days"``, ``“本季度预算已经批准”`` — never a stop-word, a
fragment, or the lead's own company or person name. :class:`CueModel` learns which phrases
those are from the training texts, and how each moves conversion:

- **Spans** are runs of 2-8 words (Latin script) or 2-12 tokens (Chinese has no spaces: each
  CJK character is a token) inside one clause: clauses split at punctuation, line breaks (a
  card's ``Title:`` labels never join a phrase) and at words the training texts write
  capitalised inside sentences at least as often as not (company and person names: ``"Nexac"``).
- **Vocabulary**: spans in at least ``min_df`` texts that are *closed* — no span one token longer
  holds 90 % of their occurrences, so ``"算已经批"`` (always inside ``"本季度预算已经批准"``) and
  ``"budget is"`` (always before ``"approved"``) are fragments, not phrases — then trimmed of
  stop-words of either language at their edges (a negation may lead: ``"no timeline"``,
  ``"don't have budget"``), kept when two tokens or more and a content word remain and at most
  ``max_df`` of the texts hold them.
- **Weights**: an L2 logistic regression of conversion on the phrases present (binary).

Per lead, :meth:`CueModel.cues` gives the present phrases of one sign, overlapping phrases
pooled into one cue (their weights summed, the strongest one quoted), strongest first; spans
touching the lead's own names (``names``: its company, person; a card's ``Company:`` line)
are skipped. How much of the text's effect each cue carries is for ``scoring.reasons`` to
split: the sign and size come from the main model, the cue weights only share them out.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W\d_{_CJK}]+(?:['\u2019][^\W\d_{_CJK}]+)*|\d+(?:[.,]\d+)*")
_CLAUSE = re.compile(r"[^\n.,;:!?()\[\]\"\u201c\u201d\u2026\u3002\uff0c\u3001\uff1b\uff1a\uff01\uff1f\uff08\uff09\u3010\u3011\u300c\u300d]+")
_IS_CJK = re.compile(rf"[{_CJK}]")
_NAME_WORD = re.compile(r"[A-Za-z\u00c0-\u024f0-9]{2,}")
_CARD_NAME = re.compile(r"^[ \t]*(?:company(?: name)?|account(?: name)?|(?:first |last |full )?name|firstname|"
                        r"lastname|contact)[ \t]*:[ \t]*(.+)$", re.I | re.M)

NEGATIONS = frozenset({"no", "not", "never", "without", "nothing", "none", "don't", "doesn't", "didn't", "can't",
                       "cannot", "won't", "isn't", "aren't", "haven't", "hasn't"})
STOP_EN = frozenset(ENGLISH_STOP_WORDS) | NEGATIONS | {
    "hi", "hello", "hey", "dear", "thanks", "thank", "regards", "best", "cheers", "sincerely", "good", "morning",
    "afternoon", "evening", "just", "i'm", "i'd", "i'll", "i've", "we're", "we'd", "we'll", "we've", "you're",
    "you'd", "it's", "that's", "there's", "let", "let's", "like", "also", "really", "ok", "okay", "yes", "etc",
    "re", "fw", "fwd", "pls", "lot", "lots", "want", "would", "could", "should", "maybe", "kind", "sort",
}
# Single characters and words of Chinese that never start or end a cue (particles, pronouns,
# greetings, "just", "a bit").
STOP_ZH_CHARS = frozenset("的了是在和与及或也就都而之为对把被从向个请吗呢吧啊呀哦嗯我你您他她它们这那有着过让给将再还又很")
STOP_ZH = ("我们", "你们", "您们", "他们", "您好", "你好", "谢谢", "感谢", "一下", "只是", "正在", "已经", "一些",
           "什么", "如何", "怎么", "因为", "所以", "但是", "然后", "可以", "非常", "目前", "请问")

MAX_WORDS, MAX_TOKENS = 8, 12

Token = tuple[str, int, int, bool]  # lowercased token, start, end, written capitalised


def _tokens(clause: str, offset: int) -> list[Token]:
    return [(m.group().lower().replace("\u2019", "'"), offset + m.start(), offset + m.end(), m.group()[:1].isupper())
            for m in _TOKEN.finditer(clause)]


def _clauses(text: str, breaks: frozenset[str] = frozenset()) -> Iterator[list[Token]]:
    """The token lists of ``text``'s clauses, also split at the words in ``breaks``."""
    for m in _CLAUSE.finditer(text[:5000]):
        part: list[Token] = []
        for tok in [*_tokens(m.group(), m.start()), ("", 0, 0, False)]:
            if tok[0] and tok[0] not in breaks:
                part.append(tok)
            elif part:
                if len(part) >= 2:
                    yield part
                part = []


def _spans(n: int, toks: list[Token]) -> Iterator[tuple[int, int]]:
    """Every (i, j) with ``toks[i:j]`` two tokens or more within the length caps."""
    for i in range(n):
        words = 0
        for j in range(i, min(n, i + MAX_TOKENS)):
            words += not _IS_CJK.match(toks[j][0])
            if words > MAX_WORDS:
                break
            if j > i:
                yield i, j + 1


def _stop(token: str) -> bool:
    return token in STOP_EN or token in STOP_ZH_CHARS


def _trim(key: tuple[str, ...]) -> tuple[str, ...]:
    """``key`` without stop-words at its edges (a leading negation stays), or ``()``."""
    i, j = 0, len(key)
    while i < j:
        if "".join(key[i:i + 2]) in STOP_ZH and i + 2 <= j:
            i += 2
        elif _stop(key[i]) and key[i] not in NEGATIONS:
            i += 1
        else:
            break
    while i < j:
        if "".join(key[j - 2:j]) in STOP_ZH and j - 2 >= i:
            j -= 2
        elif _stop(key[j - 1]):
            j -= 1
        else:
            break
    out = key[i:j]
    cjk = [t for t in out if _IS_CJK.match(t)]
    content = len(cjk) >= 2 or any(t.isalpha() and len(t) >= 3 and t not in STOP_EN for t in out)
    return out if len(out) >= 2 and content else ()


def _keys(clauses: Iterable[list[Token]]) -> Iterator[tuple[str, ...]]:
    for toks in clauses:
        for i, j in _spans(len(toks), toks):
            yield tuple(t[0] for t in toks[i:j])


class CueModel:
    """Phrases of one text column and how each moves conversion; see the module docstring."""

    def __init__(self, *, min_df: int = 3, max_df: float = 0.5, max_texts: int = 10_000, c: float = 1.0,
                 seed: int = 0) -> None:
        self.min_df, self.max_df, self.max_texts, self.c, self.seed = min_df, max_df, max_texts, c, seed
        self.weights: dict[tuple[str, ...], float] = {}
        self._first: dict[str, int] | None = None

    def _starts(self) -> dict[str, int]:
        """First token of each phrase -> the longest phrase starting with it (spans worth looking up)."""
        if getattr(self, "_first", None) is None:
            first: dict[str, int] = {}
            for k in self.weights:
                first[k[0]] = max(first.get(k[0], 0), len(k))
            self._first = first
        return self._first or {}

    def fit(self, texts: Sequence[str], y: Any) -> CueModel:
        """Learn the vocabulary and its weights from training texts and their 0/1 outcomes."""
        y = np.asarray(y, dtype=int)
        if len(texts) > self.max_texts:  # the vocabulary settles long before; keeps training linear
            keep = np.sort(np.random.default_rng(self.seed).choice(len(texts), self.max_texts, replace=False))
            texts, y = [texts[i] for i in keep], y[keep]
        names = _name_like([list(_clauses(t)) for t in texts])
        parsed = [list(_clauses(t, names)) for t in texts]
        vocab = self._vocabulary(parsed)
        if not vocab or np.unique(y).size < 2:
            return self
        from scipy import sparse
        from sklearn.linear_model import LogisticRegression

        index = {k: i for i, k in enumerate(sorted(vocab))}
        rows, cols = [], []
        for r, clauses in enumerate(parsed):
            present = {index[k] for k in _keys(clauses) if k in index}
            rows += [r] * len(present)
            cols += sorted(present)
        x = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(parsed), len(index)))
        coef = LogisticRegression(C=self.c, max_iter=2000, solver="liblinear").fit(x, y).coef_[0]
        self.weights = {k: float(coef[i]) for k, i in index.items() if abs(coef[i]) > 1e-3}
        self._first = None
        return self

    def _vocabulary(self, parsed: list[list[list[Token]]]) -> set[tuple[str, ...]]:
        """Closed frequent spans (no one-token-longer span holds 90 % of their occurrences), trimmed."""
        df: Counter[tuple[str, ...]] = Counter()
        for clauses in parsed:
            df.update(set(_keys(clauses)))
        low = max(2, min(self.min_df, math.ceil(len(parsed) / 50)))
        frequent = {k for k, n in df.items() if n >= low}
        occ: Counter[tuple[str, ...]] = Counter()
        ext: defaultdict[tuple[str, ...], Counter[tuple[str, ...]]] = defaultdict(Counter)
        for clauses in parsed:
            for toks in clauses:
                keys = {(i, j): tuple(t[0] for t in toks[i:j]) for i, j in _spans(len(toks), toks)}
                for (i, j), k in keys.items():
                    if k in frequent:
                        occ[k] += 1
                        for longer in ((i - 1, j), (i, j + 1)):
                            if longer in keys:
                                ext[k][keys[longer]] += 1
        closed = {k for k in frequent if not ext[k] or max(ext[k].values()) < 0.9 * occ[k]}
        top = self.max_df * len(parsed)
        return {t for t in map(_trim, closed) if t and df[t] <= top}

    def cues(self, text: str, sign: float, names: Iterable[str] = (), values: Iterable[str] = (),
             k: int = 2) -> list[tuple[str, float]]:
        """Up to ``k`` (phrase as the lead wrote it, pooled weight) of ``sign``, strongest first.

        Spans touching ``names`` (the lead's own: whole or any of their words) or repeating one
        of ``values`` (what the lead's other fields already say) are never quoted."""
        if not self.weights or not sign:
            return []
        starts = self._starts()
        found = []
        for toks in _clauses(text):
            keys = [t[0] for t in toks]
            for i, first in enumerate(keys):
                for j in range(i + 2, min(len(keys), i + starts.get(first, 0)) + 1):
                    w = self.weights.get(tuple(keys[i:j]))
                    if w is not None:
                        found.append((toks[i][1], toks[j - 1][2], w))
        if found:
            blocked = _blocked(text, [*names, *_CARD_NAME.findall(text[:5000])], values)
            found = [f for f in found if not any(s < f[1] and f[0] < e for s, e in blocked)]
        out: list[tuple[str, float]] = []
        found.sort(key=lambda f: (-f[2] * sign, f[0]))
        used: list[tuple[int, int]] = []
        for start, end, w in found:
            if w * sign <= 0 or any(s < end and start < e for s, e in used):
                continue
            pooled = sum(v for s, e, v in found if s < end and start < e and not any(a < e and s < b for a, b in used))
            used.append((start, end))
            if pooled * sign > 0:
                out.append((" ".join(text[start:end].split()), pooled))
        return sorted(out, key=lambda c: -c[1] * sign)[:k]


def _name_like(parsed: list[list[list[Token]]]) -> frozenset[str]:
    """Latin words the texts write capitalised inside clauses at least as often as in lower case."""
    upper: Counter[str] = Counter()
    lower: Counter[str] = Counter()
    for clauses in parsed:
        for toks in clauses:
            for n, (tok, _, _, cap) in enumerate(toks):
                if _IS_CJK.match(tok) or not tok.isalpha():
                    continue
                if cap and n > 0:
                    upper[tok] += 1
                elif not cap:
                    lower[tok] += 1
    return frozenset(t for t, n in upper.items() if n >= lower[t] and t not in STOP_EN)


def _blocked(text: str, names: Iterable[str], values: Iterable[str] = ()) -> list[tuple[int, int]]:
    """Character ranges of ``text`` that name the lead (each name whole, its Latin words, its CJK
    characters) or repeat one of ``values`` whole. Plain searches: no pattern is compiled per lead."""
    head = text[:5000]
    fold = len(head.lower()) == len(head)  # else a letter's lower case is longer: match the case as written
    low = head.lower() if fold else head
    out: list[tuple[int, int]] = []

    def find(needle: str, whole_word: bool) -> None:
        needle = needle.lower() if fold else needle
        at = low.find(needle)
        while at >= 0:
            end = at + len(needle)
            if not whole_word or not (_latin(low, at - 1) or _latin(low, end)):
                out.append((at, end))
            at = low.find(needle, at + 1)

    for value in values:
        if len(value.strip()) >= 2:
            find(value.strip(), True)
    for name in names:
        name = " ".join(str(name).split())
        if len(name) < 2:
            continue
        find(name, True)
        for word in _NAME_WORD.findall(name):
            if word.lower() not in STOP_EN:
                find(word, True)
        for ch in name:
            if _IS_CJK.match(ch):
                find(ch, False)
    return out


def _latin(s: str, i: int) -> bool:
    return 0 <= i < len(s) and ("a" <= s[i].lower() <= "z" or "\u00c0" <= s[i] <= "\u024f")


NAME_KEYS = ("company", "first_name", "last_name", "name", "full_name")


def lead_names(rows: Any) -> list[list[str]]:
    """Per row, the names that must never appear in its reasons (its company, its person)."""
    if hasattr(rows, "iloc"):
        cols = [c for c in NAME_KEYS if c in rows.columns]
        return [[str(v) for v in vals if isinstance(v, str) and v.strip()]
                for vals in zip(*(rows[c] for c in cols), strict=True)] if cols else [[] for _ in range(len(rows))]
    return [[str(r[c]) for c in NAME_KEYS if isinstance(r, Mapping) and isinstance(r.get(c), str) and r[c].strip()]
            for r in rows]


def quoted(label: str, phrase: str) -> str:
    """``Message: "budget is approved"``; a Chinese phrase in Chinese quotation marks."""
    return f"{label}: \u201c{phrase}\u201d" if _IS_CJK.search(phrase) else f'{label}: "{phrase}"'
