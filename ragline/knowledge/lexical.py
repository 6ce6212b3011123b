"""Sparse lexical vectors for hybrid retrieval: BM25 term weights that Qdrant completes with
its IDF modifier at query time.

Tokenisation: lowercase, runs of letters and digits (Unicode-aware), English stop words
dropped, Snowball English stemming (PyStemmer). A term's index is the CRC-32 of its stem, so
documents and queries agree without a stored vocabulary. A document's weight for a term is
BM25's saturated term frequency tf·(k1+1) / (tf + k1·(1 - b + b·len/avglen)); a query's is 1
per distinct term; Qdrant multiplies by the term's IDF over the collection.
"""

from __future__ import annotations

import re
import threading
import zlib
from collections import Counter
from dataclasses import dataclass

import Stemmer

K1 = 1.2
B = 0.75
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself
    yourselves""".split()
)


@dataclass(frozen=True)
class SparseVector:
    indices: list[int]
    values: list[float]


class LexicalEncoder:
    def __init__(self) -> None:
        self._stemmer = Stemmer.Stemmer("english")
        self._stemmer.maxCacheSize = 100_000
        self._lock = threading.Lock()  # a Stemmer (and its cache) is not thread-safe

    def terms(self, text: str) -> list[str]:
        words = [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]
        with self._lock:
            return list(self._stemmer.stemWords(words))

    def document(self, text: str, average_length: float) -> SparseVector:
        terms = self.terms(text)
        counts = Counter(terms)
        norm = K1 * (1 - B + B * len(terms) / max(average_length, 1.0))
        weights: dict[int, float] = {}
        for term, tf in counts.items():
            index = _index(term)
            weights[index] = weights.get(index, 0.0) + tf * (K1 + 1) / (tf + norm)
        return SparseVector(list(weights), list(weights.values()))

    def query(self, text: str) -> SparseVector:
        indices = sorted({_index(term) for term in self.terms(text)})
        return SparseVector(indices, [1.0] * len(indices))


def _index(term: str) -> int:
    return zlib.crc32(term.encode("utf-8"))
