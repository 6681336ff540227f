"""The small interface every tokenizer format implements, and the error taxonomy."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence


class Tokenizer(ABC):
    """A loaded tokenizer.

    Implementations never add special tokens (BOS/EOS) when encoding, never execute
    code or unpickle anything from the artifact, and are loaded once per worker.
    """

    format: str  # registry format name, e.g. "tiktoken-ranks"
    algorithm: str  # bpe | unigram | wordpiece | wordlevel
    pre_tokenizer: str  # regex or short description of the pre-tokenization

    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """Number of ids, special tokens included."""

    @property
    @abstractmethod
    def special_ids(self) -> frozenset[int]:
        """Ids of special/control tokens (excluded from counts)."""

    @property
    def unk_id(self) -> int | None:
        """Id of the unknown token, or None (byte-level tokenizers have none)."""
        return None

    @abstractmethod
    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text, with no special tokens added."""

    @abstractmethod
    def encode_batch_with_starts(self, texts: Sequence[str]) -> list[tuple[list[int], list[int]]]:
        """(ids, starts) per text; starts[i] is the character offset in the original text
        where token i begins (non-decreasing). Used for continued-word counts."""

    @abstractmethod
    def vocab(self) -> dict[str | bytes, int]:
        """Token (str, or bytes for byte-level rank formats) to id."""

    def merges(self) -> list[tuple[str | bytes, str | bytes]] | None:
        """Ordered BPE merges where the format has or implies them, else None."""
        return None

    def encode(self, text: str) -> list[int]:
        return self.encode_batch([text])[0]
