"""One served model: a thin adapter from Translator.translate_full (a Summarizer's too) to the JSON
the API returns.

    engine = Engine.load("runs/demo/model")
    engine.run(["tuesday, march 3, 2015"], beam_size=5, nbest=1, attention=True)
    # [[{"output": "2015-03-03", "score": -0.01,
    #    "attention": {"source": [...pieces], "output": [...pieces, "</s>"],
    #                  "weights": [[...] one row per output piece], "coverage": [...]}}]]

`weights[t][i]` is the attention of output step t (the EOS step included) on source piece i;
`coverage[i]` sums it over the steps (See et al. 2017). For a pointer-generator (copy) model
each output step also has `p_gen`, the probability of generating from the vocabulary rather
than copying a source piece (1 - p_gen is the copy probability). The search does not return
p_gen, so it is read from a teacher-forced pass over the chosen output (`generation_probs`):
the model is deterministic in eval mode, so the pass over a hypothesis computes the same
states, attention and p_gen as the search step that chose it.

A blank line is not searched (seq2seq/decoding.py): output "", score 0, no source pieces, and
the one output piece "</s>" with an empty weight row (and p_gen null).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from seq2seq.batch import collate
from seq2seq.checkpoint import BEST, load_meta
from seq2seq.device import autocast
from seq2seq.tasks.summarization.summarizer import Summarizer
from seq2seq.tasks.translation.translator import Translation, Translator
from seq2seq.vocab import UNK, Vocab

TASKS = {"translation": Translator, "summarization": Summarizer}
DIGITS = 4  # attention weights and probabilities are rounded to this many decimals in JSON


class Engine:
    """A model directory loaded for serving, under a name the requests use."""

    def __init__(self, name: str, task: str, translator: Translator):
        self.name, self.task, self.translator = name, task, translator

    @classmethod
    def load(cls, model_dir: str | Path, name: str | None = None, device: str = "auto",
             weights: str | Path = BEST, precision: str | None = None) -> "Engine":
        _, meta = load_meta(Path(model_dir))
        task = meta.get("task", "translation")
        return cls(name or Path(model_dir).name, task, TASKS[task].load(model_dir, device, weights, precision))

    @property
    def default_beam(self) -> int:
        return self.translator.recipe.decoding.beam_size

    def describe(self) -> dict:
        """What GET /v1/models says about this model."""
        model = self.translator.model
        return {"name": self.name, "task": self.task,
                "endpoint": "/v1/summarize" if self.task == "summarization" else "/v1/translate",
                "beam_size": self.default_beam, "copy": model.copy is not None,
                "recipe": self.translator.recipe.name}

    def run(self, lines: list[str], beam_size: int, nbest: int, attention: bool) -> list[list[dict]]:
        """Up to `nbest` results per line, best first (see the module docstring)."""
        found = self.translator.translate_full(lines, beam_size, nbest=nbest, attention=attention)
        results = [[{"output": c.text, "score": c.score if math.isfinite(c.score) else None}
                    for c in line.hypotheses] for line in found]
        if not attention:
            return results
        p_gen = self._copy_probs(lines, found) if self.translator.model.copy is not None else None
        for i, line in enumerate(found):
            for k, c in enumerate(line.hypotheses):
                weights = c.attention.float()  # (len(c.pieces), len(line.source_pieces))
                entry = {"source": line.source_pieces, "output": c.pieces,
                         "weights": _rounded(weights.tolist()),
                         "coverage": _rounded(weights.sum(0).tolist())}
                if p_gen is not None:
                    entry["p_gen"] = _rounded(p_gen[i][k])
                results[i][k]["attention"] = entry
        return results

    def _copy_probs(self, lines: list[str], found: list[Translation]) -> list[list[list]]:
        """p_gen for each hypothesis of each line, one per output piece; [None] for a blank line."""
        t = self.translator
        sources, oovs = t.encode(lines)
        probs: list[list[list]] = [[[None]] * len(line.hypotheses) for line in found]
        searched = [(i, k) for i, line in enumerate(found) if sources[i]
                    for k in range(len(line.hypotheses))]
        if searched:
            outputs = [output_ids(t.tgt_vocab, found[i].hypotheses[k].pieces[:-1], oovs[i])
                       for i, k in searched]
            p_gen = generation_probs(t.model, [sources[i] for i, _ in searched], outputs, t.device, t.precision)
            for (i, k), p in zip(searched, p_gen):
                probs[i][k] = p
        return probs


def output_ids(vocab: Vocab, pieces: list[str], oovs: list[str]) -> list[int]:
    """The ids behind a hypothesis' output pieces ('</s>' left off): a vocabulary piece is its
    id, a copied piece (written as its source text) its extended id. A generated UNK and an
    extended id its sentence does not have are both written '<unk>' and come back as UNK; the
    model reads either one as UNK, so the teacher-forced pass is the search's all the same."""
    ids = [vocab.sp.piece_to_id(p) for p in pieces]
    return [len(vocab) + oovs.index(p) if i == UNK and p in oovs else i for p, i in zip(pieces, ids)]


@torch.no_grad()
def generation_probs(model, sources: list[list[int]], outputs: list[list[int]],
                     device: torch.device, precision: str = "fp32") -> list[list[float]]:
    """p_gen of a pointer-generator at each step of each output (the EOS step included): one
    teacher-forced pass in the search's `precision`, the gate's pre-sigmoid value caught by a
    forward hook."""
    caught = []
    hook = model.copy.gate.register_forward_hook(lambda module, args, out: caught.append(out))
    try:
        with autocast(device, precision):
            model(collate(sources, outputs).to(device))
    finally:
        hook.remove()
    p_gen = torch.sigmoid(caught[0].float()).squeeze(-1).cpu()  # (B, T + 1)
    return [p_gen[b, :len(out) + 1].tolist() for b, out in enumerate(outputs)]


def _rounded(values):
    """Numbers (in nested lists) to DIGITS decimals; None stays None."""
    if isinstance(values, list):
        return [_rounded(v) for v in values]
    return None if values is None else round(values, DIGITS)
