"""What seq2seq-serve can be told: request limits and batching, each default in one typed place.

The command line (seq2seq/cli/serve.py) makes one flag per field (`--max-sentences` for
`max_sentences` and so on) with these defaults and each field's `help`; GET /v1/models reports
the limits, so that a client (the page at `/`) can keep to them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from seq2seq.errors import UserError


@dataclass(frozen=True)
class ServeConfig:
    max_sentences: int = field(default=64, metadata={
        "min": 1, "help": "texts in one request"})
    max_chars: int = field(default=10_000, metadata={
        "min": 1, "help": "characters in one request, all texts together"})
    max_beam_size: int = field(default=16, metadata={
        "min": 1, "help": "the largest beam_size a request may ask for"})
    batch_wait_ms: float = field(default=5.0, metadata={
        "min": 0, "help": "after a request arrives, wait this long for others to share its search"})
    max_batch_sentences: int = field(default=128, metadata={
        "min": 1, "help": "sentences in one search; a full batch starts at once"})

    @property
    def max_body_bytes(self) -> int:
        """A body holding max_chars characters, each escaped as a JSON surrogate pair (12
        bytes), plus 64 KiB for the rest: anything larger is refused before it is parsed."""
        return 12 * self.max_chars + 65_536

    def check(self) -> "ServeConfig":
        """Every field at least its minimum, else a UserError naming the flag."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not math.isfinite(value) or value < f.metadata["min"]:
                raise UserError(f"--{f.name.replace('_', '-')}: must be a finite number at least "
                                f"{f.metadata['min']}, got {value}")
        return self

    def limits(self) -> dict:
        """The limits a client must keep to, as GET /v1/models reports them."""
        return {"max_sentences": self.max_sentences, "max_chars": self.max_chars,
                "max_beam_size": self.max_beam_size}
