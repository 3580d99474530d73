"""Ensembles: several encoder-decoders searched as one model (`seq2seq-translate DIR DIR2 ...`,
`Translator.load([dir, dir2])`).

    ensemble = Ensemble([model_a, model_b])            # built models, passed in
    memory, state = ensemble.encode(src, src_lengths)  # one memory and one state per member
    log_probs, weights, state = ensemble.step(prev, memory, state)

An Ensemble has the interface that search.py, sampling.py and decoding.py take from one model
(encode, step, memories and states with .select(index)), so the beam search, greedy search and
sampling run it unchanged: every member is fed the same previous tokens, each keeps its own memory
and state (reordered and shrunk with the beams by .select), and a token's log-probability is the
MEAN OF THE MEMBERS' LOG-PROBABILITIES (log-softmax outputs),

    log p(y_t | y_<t, x) = 1/M sum_m log p_m(y_t | y_<t, x)

a geometric mean of the members' distributions, not renormalised (as OpenNMT-py and Nematus
combine members; fairseq takes the log of the mean probability instead). Chosen because
  - a hypothesis's score is then the mean of the members' own log-probabilities of it, so scores,
    n-best lists and the length penalty read as one model's do, and an ensemble of one model, or
    of one model twice, is that model exactly;
  - a token needs the support of every member: one that finds it near impossible vetoes it (a
    product of experts), where in a mixture one confident member can carry it alone.
Sampling draws from the renormalised mean (filter_log_probs takes a log_softmax). The attention
weights are the members' mean (heatmaps, attention output, the coverage penalty).

What the members must share (check_members, for model directories): the target vocabulary, over
whose ids the log-probabilities are averaged, and the source vocabulary, since all of them read the
one batch of source ids that the search runs (and their attention is averaged over its positions).
Architectures may differ. Copy (pointer-generator) models: all members copy or none does; then
every member's output covers the same extended ids (>= V: the source-only pieces of the shared
source), where a member without copy has no such ids and would veto every copied piece. Members
decode in one precision: the Translator turns the whole Ensemble to it (seq2seq/device.py).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from seq2seq.config import Recipe, VocabConfig
from seq2seq.errors import UserError
from seq2seq.vocab import Vocab


@dataclass
class Members:
    """One memory (or one decoder state) per member; .select picks the same rows of each."""

    parts: tuple  # parts[m]: member m's Memory or DecoderState, each with B rows

    def select(self, index: torch.Tensor) -> "Members":
        return Members(tuple(part.select(index) for part in self.parts))


class Ensemble(nn.Module):
    """Models with the search interface (Seq2Seq: encode, step), searched as one: each step the
    mean of their log-probabilities. Built models are passed in; see the module docstring."""

    def __init__(self, members: Sequence[nn.Module]):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one model")
        copies = {getattr(m, "copy", None) is not None for m in members}
        if len(copies) > 1:
            raise ValueError("either every member copies (extended ids) or none does")
        self.members = nn.ModuleList(members)

    @property
    def copy(self) -> nn.Module | None:
        """The first member's copy layer (all members copy, or none does): what the translator
        asks to know whether sources take extended ids."""
        return getattr(self.members[0], "copy", None)

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[Members, Members]:
        """src (B, S) -> each member's memory and initial state."""
        encoded = [member.encode(src, src_lengths) for member in self.members]
        return Members(tuple(m for m, _ in encoded)), Members(tuple(s for _, s in encoded))

    def step(self, prev: torch.Tensor, memory: Members, state: Members):
        """prev (B,) -> the mean of the members' log-probabilities (B, V) in fp32 (with copy V is
        the extended vocabulary, the same for all: one source), the mean of their attention
        weights (B, S) and each member's new state."""
        log_probs, weights, states = [], [], []
        for member, mem, st in zip(self.members, memory.parts, state.parts):
            lp, w, st = member.step(prev, mem, st)
            log_probs.append(lp.float())  # under bf16 autocast the mean is still taken in fp32
            weights.append(w.float())
            states.append(st)
        return torch.stack(log_probs).mean(0), torch.stack(weights).mean(0), Members(tuple(states))


def model_dirs(model_dir: str | Path | Sequence[str | Path]) -> list[Path]:
    """One model directory, or several (an ensemble), as a list of paths."""
    dirs = [Path(model_dir)] if isinstance(model_dir, (str, Path)) else [Path(d) for d in model_dir]
    if not dirs:
        raise UserError("no model directory given")
    return dirs


def vocabulary_key(vocab: Vocab, cfg: VocabConfig) -> tuple:
    """What a vocabulary does: each id's piece, score and kind, and the algorithm and normalisation
    rule that encode text into them (the recipe's vocab section). Not the .model file's bytes: they
    also record how it was trained (the training files' paths, the model's own path), which differ
    between two runs of one recipe that made the same vocabulary."""
    sp, ids = vocab.sp, list(range(len(vocab)))
    return (cfg.model_type, cfg.normalization, tuple(sp.id_to_piece(ids)), tuple(sp.get_score(ids)),
            tuple(sp.is_control(ids)), tuple(sp.is_unknown(ids)), tuple(sp.is_unused(ids)),
            tuple(sp.is_byte(ids)))


def check_members(dirs: list[Path], recipes: list[Recipe], vocabs: list[tuple[Vocab, Vocab]],
                  models: list[nn.Module]) -> None:
    """The model directories of an ensemble, each with its recipe, (source, target) vocabularies
    and built model: a UserError naming two directories where the vocabularies differ or one
    copies and another does not; a warning line for each later directory whose decoding section or
    data.max_source_length differs from the first's, which the ensemble decodes with."""
    first = dirs[0]
    keys = [tuple(vocabulary_key(vocab, recipe.vocab) for vocab in pair) for pair, recipe in zip(vocabs, recipes)]
    ours = {**_prefixed("decoding", recipes[0].decoding),
            "data.max_source_length": recipes[0].data.max_source_length}
    for i in range(1, len(dirs)):
        for side, name, why in ((1, "target", "whose ids their log-probabilities are averaged over"),
                                (0, "source", "since they all read one batch of source ids")):
            if keys[i][side] != keys[0][side]:
                raise UserError(f"{dirs[i]}: its {name} vocabulary ({vocabs[i][side].path}) is not "
                                f"{first}'s ({vocabs[0][side].path}): the models of an ensemble "
                                f"share the {name} vocabulary, {why} (the same pieces, vocab.model_type "
                                "and vocab.normalization)")
        if (models[i].copy is None) != (models[0].copy is None):
            copier, plain = (dirs[i], first) if models[0].copy is None else (first, dirs[i])
            raise UserError(f"{copier} copies (model.copy) and {plain} does not: in an ensemble every "
                            "model copies (extended ids for source-only pieces) or none does")
        theirs = {**_prefixed("decoding", recipes[i].decoding),
                  "data.max_source_length": recipes[i].data.max_source_length}
        differ = [k for k in ours if ours[k] != theirs[k]]
        if differ:
            said = ", ".join(f"{k} {theirs[k]!r}" for k in differ)
            print(f"warning: {dirs[i]}: {said}: not used; an ensemble decodes with its first model "
                  f"directory's settings ({first}: {', '.join(f'{ours[k]!r}' for k in differ)})",
                  file=sys.stderr)


def _prefixed(section: str, cfg) -> dict:
    return {f"{section}.{k}": v for k, v in dataclasses.asdict(cfg).items()}
