"""Training logs in the model directory: JSON lines appended as training goes, cut back on resume.

    train_log.jsonl   one line per validation: step, epoch, bleu, valid_loss, valid_ppl, lr, ...
    steps.jsonl       one line per update: step, epoch (1-based), loss (per target token; null
                      when the step was skipped as non-finite), tokens, grad_norm

Each line is flushed as it is written, so a killed run leaves whole lines (and at most one half
line, which `trim` drops). Floats are written with repr, so they read back bit for bit.
"""

from __future__ import annotations

import json
from pathlib import Path

from seq2seq.checkpoint import atomic_write


class JsonLines:
    """An append-only JSON-lines file whose records carry a "step"."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._file = None

    def append(self, record: dict) -> None:
        if self._file is None:
            self._file = open(self.path, "a", encoding="utf-8")
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def read(self) -> list[dict]:
        """The whole records; a half-written line (from a killed run) is passed over."""
        if not self.path.exists():
            return []
        records = []
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records

    def trim(self, last_step: int) -> None:
        """Keep the records up to `last_step`: a resumed run writes the later ones again."""
        self.close()
        if not self.path.exists():
            return
        kept = [r for r in self.read() if isinstance(r.get("step"), int) and r["step"] <= last_step]
        text = "".join(json.dumps(r) + "\n" for r in kept)
        atomic_write(self.path, lambda p: p.write_text(text, encoding="utf-8"))
