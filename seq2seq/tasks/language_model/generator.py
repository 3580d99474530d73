"""Load a language-model directory, generate text and score it: the Python entry point, and the
scores of seq2seq-evaluate for a language model.

    from seq2seq import LanguageModel
    lm = LanguageModel.load("runs/tinyshakespeare")
    lm.generate("ROMEO:", 200)                                   # greedy: the most probable units
    lm.generate("ROMEO:", 200, sampling="topp:0.9", temperature=0.8, seed=1, num_samples=3)  # 3 samples
    lm.score(["To be, or not to be", "the rest is silence"])    # per text: loss, ppl, bpc, ...
    lm.score_text(open("valid.txt").read())                     # one continuous text, as validation

`length` counts units (characters with a character vocabulary, pieces otherwise); generate
returns the continuation after the prefix. Sampling takes the translation commands' schemes and
filter (seq2seq/sampling.py: filter_log_probs, draw): sample j draws its uniform numbers from the
generator of (seed, j), all up front, so a seed gives the same samples every time, whatever
num_samples. Greedy is the argmax; topk:1 is the same. PAD and BOS are never generated.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from seq2seq.checkpoint import BEST
from seq2seq.config import Recipe
from seq2seq.device import ROOM_DECODING_AUTO, autocast, for_decoding
from seq2seq.errors import UserError
from seq2seq.sampling import Sampling, draw, filter_log_probs, parse_sampling, sentence_generator
from seq2seq.tasks.language_model.data import cut_rows, decode_units, encode_text, pad_rows, read_text, stream
from seq2seq.tasks.language_model.metric import scores
from seq2seq.tasks.language_model.model import RecurrentLanguageModel, build_language_model, row_nats
from seq2seq.tasks.loading import load_task_weights, open_task_dir
from seq2seq.vocab import BOS, PAD, Vocab, load_vocabs

SCHEMES = "greedy, topk:K (a whole K >= 1) or topp:P (0 < P <= 1)"


def parse_scheme(scheme: str, temperature: float | None = None, seed: int | None = None, *,
                 where: str = "sampling") -> Sampling | None:
    """'greedy' -> None, 'topk:K' or 'topp:P' -> a Sampling (seq2seq.sampling.parse_sampling);
    anything else, beam search included, is a UserError naming `where`."""
    if scheme != "greedy" and scheme.partition(":")[0] not in ("topk", "topp"):
        raise UserError(f"{where} {scheme!r}: a language model generates by {SCHEMES}")
    try:
        return parse_sampling(scheme, temperature, seed, where=where)
    except UserError as e:
        if str(e).startswith(f"{where} "):  # a bad K or P: said with this command's schemes
            raise UserError(f"{where} {scheme!r}: expected {SCHEMES}") from None
        raise


@torch.no_grad()
def generate_units(model: RecurrentLanguageModel, context: list[int], length: int, sampling: Sampling | None,
                   num_samples: int, device: torch.device, precision: str = "fp32") -> list[list[int]]:
    """`num_samples` continuations of `length` units after the units `context` (non-empty), each
    unit the argmax (sampling None) or drawn from filter_log_probs of the model's distribution;
    in `precision` (resolved: seq2seq/device.py)."""
    was_training = model.training
    model.eval()
    if sampling is not None:  # (num_samples, length): sample j's from its own generator
        uniforms = torch.stack([torch.rand(length, generator=sentence_generator(sampling.seed, j), dtype=torch.float64)
                                for j in range(num_samples)]).to(device)
    x = torch.tensor([context], device=device).expand(num_samples, -1)  # (N, C)
    state, out = None, []
    for t in range(length):
        with autocast(device, precision):
            logits, state = model(x, state)  # (N, t, V)
        scores = logits[:, -1].float()
        scores[:, [PAD, BOS]] = float("-inf")
        if sampling is None:
            unit = scores.argmax(-1)  # (N,)
        else:
            unit = draw(filter_log_probs(scores, sampling.temperature, sampling.top_k, sampling.top_p), uniforms[:, t])
        out.append(unit)
        x = unit.unsqueeze(1)  # (N, 1)
    model.train(was_training)
    return torch.stack(out, 1).tolist() if out else [[] for _ in range(num_samples)]


class LanguageModel:
    """A trained language model with its vocabulary, ready to generate and score text.
    `precision`: 'auto', 'fp32', 'bf16' or 'int8', None for the recipe's decoding.precision."""

    def __init__(self, model: RecurrentLanguageModel, vocab: Vocab, recipe: Recipe, device: torch.device,
                 precision: str | None = None):
        model, self.precision = for_decoding(model, precision or recipe.decoding.precision, device,
                                             "decoding.precision" if precision is None else "precision",
                                             ROOM_DECODING_AUTO)
        self.model, self.vocab, self.recipe, self.device = model.eval(), vocab, recipe, device

    @classmethod
    def load(cls, model_dir: str | Path, device: str = "auto", weights: str | Path = BEST,
             precision: str | None = None) -> "LanguageModel":
        """`weights`: a bare file name is looked up in the model directory; a path is used as is."""
        model_dir, recipe, meta = open_task_dir(model_dir, "language_model", "a language model",
                                                "train a recipe with task: language_model")
        vocab = load_vocabs(model_dir, True, meta)[0]
        model = build_language_model(recipe.model, len(vocab))
        model, dev = load_task_weights(model, model_dir, weights, device)
        return cls(model, vocab, recipe, dev, precision)

    def encode(self, text: str) -> list[int]:
        """The units of a text (seq2seq/tasks/language_model/data.py: a newline is EOS)."""
        return encode_text(self.vocab, text)

    def generate(self, prefix: str = "", length: int = 100, *, sampling: str = "greedy",
                 temperature: float | None = None, seed: int | None = None,
                 num_samples: int = 1) -> str | list[str]:
        """The continuation of `prefix` by `length` units, or with num_samples above 1 a list of
        that many. sampling: 'greedy', 'topk:K' or 'topp:P' (temperature and seed: sampling only)."""
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise UserError(f"length {length!r}: must be a whole number of units, 0 or more")
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise UserError(f"num_samples {num_samples!r}: must be a whole number, 1 or more")
        plan = parse_scheme(sampling, temperature, seed)
        context = stream(self.encode(prefix)).tolist()  # EOS (the start) + the prefix's units
        units = generate_units(self.model, context, length, plan, num_samples, self.device,
                               self.precision)
        texts = [decode_units(self.vocab, u) for u in units]
        return texts[0] if num_samples == 1 else texts

    def score(self, texts: list[str], *, batch_size: int | None = None) -> list[dict]:
        """Each text on its own, from the start (as after a newline), every unit predicted: a dict
        of seq2seq/tasks/language_model/metric.py's scores (loss, ppl, nats_per_char, bpc, units,
        characters). An empty text is an error."""
        for i, text in enumerate(texts):
            if not text:
                raise UserError(f"text {i}: empty; there is nothing to score")
        streams = [stream(self.encode(t)) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: streams[i].numel())
        size = batch_size or self.recipe.decoding.sentences_per_batch()
        out: list[dict] = [{}] * len(texts)
        for start in range(0, len(order), size):
            chunk = order[start:start + size]
            inputs, targets = pad_rows([streams[i] for i in chunk])
            nats, units = self._nats(inputs, targets)
            for i, n, u in zip(chunk, nats.tolist(), units.tolist()):
                out[i] = scores(n, u, len(texts[i]))
        return out

    def score_text(self, text: str, *, streams: int | None = None) -> dict:
        """One continuous text as validation scores it: cut into `streams` rows (default the
        recipe's language_model.streams), each from a zero state, every unit predicted once."""
        if not text:
            raise UserError("empty text; there is nothing to score")
        inputs, targets = cut_rows(stream(self.encode(text)), streams or self.recipe.language_model.streams)
        nats, units = self._nats(inputs, targets)
        return scores(float(nats.sum()), int(units.sum()), len(text))

    def _nats(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return row_nats(self.model, inputs, targets, self.recipe.language_model.bptt_length, self.device,
                        self.precision)


def evaluate(args) -> int:
    """seq2seq-evaluate for a language model: --src, a continuous text scored as validation scores
    its text (--batch-size: the rows it is cut into, default language_model.streams) -> perplexity
    and bits per character; the arguments are seq2seq-evaluate's (seq2seq/cli/evaluate.py)."""
    from seq2seq.cli.common import check_sizes
    given = [flag for flag, unused in (("--ref", args.ref), ("--beam-size", args.beam_size is not None),
                                       ("--metric", args.metric != "bleu"), ("--output", args.output)) if unused]
    if given:
        raise UserError(f"{args.model_dir}: a language model is scored on --src alone, by perplexity and bits per "
                        f"character; not with {', '.join(given)} (for translation, summarisation and classification)")
    check_sizes(args, ("batch_size",))
    text = read_text(Path(args.src))
    lm = LanguageModel.load(args.model_dir, args.device, args.weights, args.precision)
    result = lm.score_text(text, streams=args.batch_size)
    rounded = {k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}
    print(json.dumps(rounded) if args.json else
          f"ppl {result['ppl']:.3f}  bpc {result['bpc']:.4f}  loss {result['loss']:.4f} nats/unit  "
          f"({result['nats_per_char']:.4f} nats/char; {result['units']} units, {result['characters']} characters)")
    return 0
