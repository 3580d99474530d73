"""Load a model directory and translate: the Python entry point.

    from seq2seq import Translator
    translator = Translator.load("runs/demo")
    translator.translate(["Tuesday, 3 March 2015"])            # one string per line
    translator.translate(["12/25/99"], beam_size=5, nbest=3)   # up to 3 strings per line
    [t] = translator.translate_full(["12/25/99"], beam_size=5, nbest=2, attention=True)
    t.source_pieces, t.hypotheses[0].text, t.hypotheses[0].score, t.hypotheses[0].attention
    translator.translate(["12/25/99"], sampling="topk:10", temperature=0.8, seed=1, nbest=4)
    Translator.load("runs/demo", precision="int8")             # fp32, bf16, int8; default: the recipe's
    Translator.load(["runs/a", "runs/b"])                      # an ensemble of two (ensemble.py)

An empty or whitespace-only line is not searched: its output is empty (score 0). evaluate(args) is
seq2seq-evaluate for a translation or summarisation model: BLEU and chrF, or ROUGE.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from seq2seq.checkpoint import BEST, load_meta, load_weights
from seq2seq.config import DecodingConfig, Recipe
from seq2seq.decoding import decode_ids
from seq2seq.device import for_decoding, resolve_device
from seq2seq.errors import UserError
from seq2seq.tasks.translation.extended import cut_sources, decode_extended, encode_sources
from seq2seq.tasks.translation.ensemble import Ensemble, check_members, model_dirs
from seq2seq.tasks.translation.model import Seq2Seq, build_model
from seq2seq.sampling import Sampling, parse_sampling
from seq2seq.vocab import EOS, UNK, Vocab, load_vocabs


@dataclass
class Candidate:
    """One hypothesis for one input line."""

    text: str
    score: float  # the search's: log P(output + EOS | source), / GNMT length penalty with beam > 1
    pieces: list[str]  # the output pieces, '</s>' last; a copied piece as its source text
    attention: torch.Tensor | None = None  # (len(pieces), len(source_pieces)), when asked for


@dataclass
class Translation:
    """An input line, the pieces the model read, and its hypotheses, best first."""

    source: str
    source_pieces: list[str]  # cut to data.max_source_length; [] for a blank line
    hypotheses: list[Candidate]


class Translator:
    """A trained model (a Seq2Seq, or an Ensemble of them) with its vocabularies, ready to
    translate strings. `precision`: 'auto', 'fp32', 'bf16' or 'int8' (seq2seq/device.py), None for
    the recipe's decoding.precision; with int8 the translator decodes with a quantised copy of `model`."""

    def __init__(self, model: Seq2Seq | Ensemble, src_vocab: Vocab, tgt_vocab: Vocab, recipe: Recipe,
                 device: torch.device, precision: str | None = None):
        model, self.precision = for_decoding(model, precision or recipe.decoding.precision, device,
                                             "decoding.precision" if precision is None else "precision")
        self.model, self.src_vocab, self.tgt_vocab = model.eval(), src_vocab, tgt_vocab
        self.recipe, self.device = recipe, device

    @classmethod
    def load(cls, model_dir: str | Path | Sequence[str | Path], device: str = "auto",
             weights: str | Path = BEST, precision: str | None = None) -> "Translator":
        """`model_dir`: a model directory, or a list of them: an ensemble, searched as one model
        (the mean of their log-probabilities, ensemble.py), which decodes with the first one's
        recipe (decoding section, data.max_source_length); one directory in a list is that model.
        `weights`: a bare file name is looked up in each model directory; a path (one directory
        only) is used as is. `precision`: as the constructor's (None: the recipe's
        decoding.precision), for every model of an ensemble."""
        dirs = model_dirs(model_dir)
        if len(dirs) > 1 and len(Path(weights).parts) > 1:
            raise UserError(f"weights {str(weights)!r}: a path names one model's weights; with "
                            f"{len(dirs)} model directories give a file name that each holds")
        loaded = [cls._load_model(d, Path(weights)) for d in dirs]
        models, recipes, vocabs = map(list, zip(*loaded))
        model = models[0]
        if len(dirs) > 1:
            check_members(dirs, recipes, vocabs, models)
            model = Ensemble(models)
        dev = resolve_device(device, "device")
        return cls(model.to(dev), *vocabs[0], recipes[0], dev, precision)

    @staticmethod
    def _load_model(model_dir: Path, weights: Path) -> tuple[Seq2Seq, Recipe, tuple[Vocab, Vocab]]:
        """One model directory's model (weights loaded, on the CPU), recipe and vocabularies."""
        recipe, meta = load_meta(model_dir)
        vocabs = load_vocabs(model_dir, recipe.vocab.joint, meta)
        model = build_model(recipe.model, meta["src_vocab_size"], meta["tgt_vocab_size"])
        load_weights(model, weights if len(weights.parts) > 1 else model_dir / weights)
        return model, recipe, vocabs

    def encode(self, lines: list[str]) -> tuple[list[list[int]], list[list[str]] | None]:
        """Source ids, cut to data.max_source_length if the recipe sets one; with copy, extended
        ids and each line's source-only pieces (extended.py), else None. A blank line
        (empty or whitespace only) has no ids: decode_ids gives it an empty output."""
        lines = [line if line.strip() else "" for line in lines]
        sources, oovs = encode_sources(self.src_vocab, lines, self.model.copy is not None)
        limit = self.recipe.data.max_source_length
        return cut_sources(sources, oovs, limit, len(self.src_vocab)) if limit else (sources, oovs)

    def search(self, lines: list[str], beam_size: int | None = None, batch_size: int | None = None,
               nbest: int = 1, return_attention: bool = False, progress: bool = False,
               decoding: DecodingConfig | None = None):
        """The search's hypotheses (ids, scores, attention) for each line (see translate_full)."""
        sources, _ = self.encode(lines)
        return decode_ids(self.model, sources, decoding or self.recipe.decoding, self.device,
                          precision=self.precision, beam_size=beam_size,
                          batch_size=batch_size, nbest=nbest, return_attention=return_attention,
                          progress=progress)

    def to_text(self, token_lists: list[list[int]], oovs: list[list[str]] | None) -> list[str]:
        """Output ids -> text; with copy, extended ids come out as the source text they stand for."""
        return decode_extended(self.tgt_vocab, token_lists, oovs) if token_lists else []

    def translate_full(self, lines: list[str], beam_size: int | None = None, *, nbest: int = 1,
                       attention: bool = False, batch_size: int | None = None,
                       progress: bool = False, decoding: DecodingConfig | None = None,
                       sampling: str | None = None, temperature: float | None = None,
                       seed: int | None = None, first_index: int = 0) -> list[Translation]:
        """Each line with up to `nbest` hypotheses (text, score, output pieces and, with
        `attention`, the attention matrix), best first. `beam_size` None and `decoding` None take
        the recipe's; nbest must be between 1 and the beam size (a UserError otherwise).

        `sampling` 'topk:K' or 'topp:P' draws `nbest` samples per line instead (seq2seq/sampling.py;
        `temperature` default 1, `seed` default 0; score: the model's log-probability of the
        sample), line i from a generator seeded by (seed, first_index + i), whatever the batch;
        'greedy' is beam size 1, 'beam' (or None) the beam search."""
        beam_size, plan = self._sampling_plan(sampling, beam_size, temperature, seed)
        sources, oovs = self.encode(lines)
        hyps = decode_ids(self.model, sources, decoding or self.recipe.decoding, self.device,
                          precision=self.precision, beam_size=beam_size,
                          batch_size=batch_size, nbest=nbest, return_attention=attention,
                          progress=progress, sampling=plan, first_index=first_index)
        known = oovs if oovs is not None else [[] for _ in lines]
        flat = [(i, h) for i, line_hyps in enumerate(hyps) for h in line_hyps]
        texts = self.to_text([h.tokens for _, h in flat], [known[i] for i, _ in flat] if oovs else None)
        read = self.src_vocab.sp.encode([line if line.strip() else "" for line in lines], out_type=str)
        results = [Translation(line, pieces[:len(src)], [])  # the pieces of the (cut) ids
                   for line, pieces, src in zip(lines, read, sources)]
        for (i, h), text in zip(flat, texts):
            pieces = self._pieces(h.tokens, known[i]) + [self.tgt_vocab.sp.id_to_piece(EOS)]
            results[i].hypotheses.append(Candidate(text, h.score, pieces, h.attention))
        return results

    def translate(self, lines: list[str], beam_size: int | None = None,
                  batch_size: int | None = None, *, nbest: int = 1, progress: bool = False,
                  decoding: DecodingConfig | None = None, sampling: str | None = None,
                  temperature: float | None = None, seed: int | None = None,
                  first_index: int = 0) -> list[str] | list[list[str]]:
        """One output line per input line; with nbest > 1, a list of up to `nbest` outputs per
        line, best first. `decoding` replaces the recipe's decoding section; `sampling`,
        `temperature`, `seed` and `first_index` as in translate_full."""
        results = self.translate_full(lines, beam_size, nbest=nbest, batch_size=batch_size,
                                      progress=progress, decoding=decoding, sampling=sampling,
                                      temperature=temperature, seed=seed, first_index=first_index)
        if nbest == 1:
            return [r.hypotheses[0].text for r in results]
        return [[c.text for c in r.hypotheses] for r in results]

    @staticmethod
    def _sampling_plan(sampling: str | None, beam_size: int | None, temperature: float | None,
                       seed: int | None) -> tuple[int | None, Sampling | None]:
        """(beam size, Sampling or None) for translate_full's arguments; what they leave unused
        is a warning, a contradiction a UserError."""
        plan = parse_sampling(sampling or "beam", temperature, seed)
        if plan is None and (temperature is not None or seed is not None):
            warnings.warn("temperature and seed apply to sampling='topk:K' or 'topp:P' only; "
                          "not used", stacklevel=3)
        if sampling == "greedy":
            if beam_size not in (None, 1):
                raise UserError(f"sampling='greedy' is beam size 1, but beam_size is {beam_size}")
            return 1, None
        if plan is not None and beam_size is not None:
            warnings.warn(f"beam_size {beam_size} is not used when sampling ({sampling})",
                          stacklevel=3)
        return beam_size, plan

    def _pieces(self, tokens: list[int], oovs: list[str]) -> list[str]:
        """Output ids -> pieces; an extended (copied) id as the source text it stands for, one
        its sentence does not have as the UNK piece."""
        size, sp = len(self.tgt_vocab), self.tgt_vocab.sp
        return [sp.id_to_piece(i) if i < size else
                oovs[i - size] if i - size < len(oovs) else sp.id_to_piece(UNK) for i in tokens]


def evaluate(args) -> int:
    """seq2seq-evaluate for a translation or summarisation model: --src translated and scored
    against the --ref files (several: several references per line) by sacreBLEU BLEU and chrF, or
    with --metric rouge by ROUGE-1/2/L F1; the arguments are seq2seq-evaluate's
    (seq2seq/cli/evaluate.py)."""
    from seq2seq.cli.common import check_search_options, check_sizes, with_search_options, write_output
    from seq2seq.lines import read_lines
    from seq2seq.tasks.summarization.metric import rouge
    from seq2seq.tasks.translation.data import check_parallel
    from seq2seq.tasks.translation.metric import bleu, chrf
    if not args.ref:
        raise UserError("the following arguments are required: --ref (see seq2seq-evaluate --help)")
    check_sizes(args)
    check_search_options(args)
    for ref in args.ref:
        check_parallel(Path(args.src), Path(ref))
    translator = Translator.load(args.model_dir, args.device, args.weights, args.precision)
    if translator.recipe.decoding.nbest > 1:
        print(f"warning: decoding.nbest is {translator.recipe.decoding.nbest} in the model's recipe; "
              "seq2seq-evaluate scores the 1-best output", file=sys.stderr)
    src, streams = read_lines(Path(args.src)), [read_lines(Path(ref)) for ref in args.ref]
    beam = args.beam_size or translator.recipe.decoding.beam_size
    hyps = translator.translate(src, beam, args.batch_size, progress=len(src) > 500,
                                decoding=with_search_options(translator.recipe.decoding, args))
    if args.output:
        write_output(hyps, args.output)
    if args.metric == "rouge":
        multi = args.multi_ref or "best"
        scores = {k: round(v, 2) for k, v in rouge(hyps, [list(r) for r in zip(*streams)], multi).items()}
        result = {**scores, "references": len(streams), "beam_size": beam, "sentences": len(src)}
        counted = ""
        if len(streams) > 1:
            result["multi_ref"], counted = multi, f", {multi} of them"
        text = "ROUGE-1 {rouge1:.2f}  ROUGE-2 {rouge2:.2f}  ROUGE-L {rougeL:.2f}".format(**scores) + \
            f"  (F1, rouge-score, Porter stemmer, {len(streams)} reference(s){counted})"
    else:
        b, b_sig = bleu(hyps, *streams)
        c, c_sig = chrf(hyps, *streams)
        result = {"bleu": round(b, 2), "chrf": round(c, 2), "bleu_signature": b_sig,
                  "chrf_signature": c_sig, "beam_size": beam, "sentences": len(src)}
        text = f"BLEU {b:.2f}  ({b_sig})\nchrF {c:.2f}  ({c_sig})"
    print(json.dumps(result) if args.json else text)
    return 0
