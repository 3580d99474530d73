"""One served model: a thin adapter from the Translator (or Summarizer) to the JSON the API returns.

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

Empty inputs (no pieces) get an empty output with score 0 and are not searched.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from seq2seq.batch import collate
from seq2seq.checkpoint import BEST, load_meta
from seq2seq.summarizer import Summarizer
from seq2seq.translator import Translator
from seq2seq.vocab import UNK, Vocab

TASKS = {"translation": Translator, "summarization": Summarizer}
DIGITS = 4  # attention weights and probabilities are rounded to this many decimals in JSON
EOS_PIECE = "</s>"


class Engine:
    """A model directory loaded for serving, under a name the requests use."""

    def __init__(self, name: str, task: str, translator: Translator):
        self.name, self.task, self.translator = name, task, translator

    @classmethod
    def load(cls, model_dir: str | Path, name: str | None = None, device: str = "auto",
             weights: str | Path = BEST) -> "Engine":
        _, meta = load_meta(Path(model_dir))
        task = meta.get("task", "translation")
        return cls(name or Path(model_dir).name, task, TASKS[task].load(model_dir, device, weights))

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
        t = self.translator
        sources, oovs = t.encode(lines)
        busy = [i for i, s in enumerate(sources) if s]
        results: list[list[dict]] = [[{"output": "", "score": 0.0}] for _ in lines]
        if attention:
            for r in results:
                r[0]["attention"] = {"source": [], "output": [], "weights": [], "coverage": []}
        if not busy:
            return results
        hyps = t.search([lines[i] for i in busy], beam_size, None, nbest, attention)
        for i, line_hyps in zip(busy, hyps):
            extra = [oovs[i]] * len(line_hyps) if oovs is not None else None
            texts = t.to_text([h.tokens for h in line_hyps], extra)
            results[i] = [{"output": text, "score": h.score if math.isfinite(h.score) else None}
                          for text, h in zip(texts, line_hyps)]
        if attention:
            self._add_attention(lines, sources, oovs, busy, hyps, results)
        return results

    def _add_attention(self, lines, sources, oovs, busy, hyps, results) -> None:
        t = self.translator
        src_pieces = t.src_vocab.sp.encode([lines[i] for i in busy], out_type=str)
        flat = [(i, k, h) for i, line_hyps in zip(busy, hyps) for k, h in enumerate(line_hyps)]
        p_gen = None
        if t.model.copy is not None:
            p_gen = generation_probs(t.model, [sources[i] for i, _, _ in flat],
                                     [h.tokens for _, _, h in flat], t.device)
        pieces_of = dict(zip(busy, src_pieces))
        for n, (i, k, h) in enumerate(flat):
            known = oovs[i] if oovs is not None else []
            weights = h.attention.float()  # (T + 1, S)
            entry = {"source": pieces_of[i][:len(sources[i])],
                     "output": output_pieces(t.tgt_vocab, h.tokens, known) + [EOS_PIECE],
                     "weights": _rounded(weights.tolist()),
                     "coverage": _rounded(weights.sum(0).tolist())}
            if p_gen is not None:
                entry["p_gen"] = _rounded(p_gen[n])
            results[i][k]["attention"] = entry


def output_pieces(vocab: Vocab, tokens: list[int], oovs: list[str]) -> list[str]:
    """Each output id as its piece; an extended (copied) id as the source text it stands for."""
    size, pieces = len(vocab), []
    for i in tokens:
        if i < size:
            pieces.append(vocab.sp.id_to_piece(i))
        else:  # an id beyond the sentence's extras reads as UNK, as in decode_extended
            pieces.append(oovs[i - size] if i - size < len(oovs) else vocab.sp.id_to_piece(UNK))
    return pieces


@torch.no_grad()
def generation_probs(model, sources: list[list[int]], outputs: list[list[int]],
                     device: torch.device) -> list[list[float]]:
    """p_gen of a pointer-generator at each step of each output (the EOS step included): one
    teacher-forced pass, the gate's pre-sigmoid value caught by a forward hook."""
    caught = []
    hook = model.copy.gate.register_forward_hook(lambda module, args, out: caught.append(out))
    try:
        model(collate(sources, outputs).to(device))
    finally:
        hook.remove()
    p_gen = torch.sigmoid(caught[0].float()).squeeze(-1).cpu()  # (B, T + 1)
    return [p_gen[b, :len(out) + 1].tolist() for b, out in enumerate(outputs)]


def _rounded(values):
    if isinstance(values, list):
        return [_rounded(v) for v in values]
    return round(values, DIGITS)
