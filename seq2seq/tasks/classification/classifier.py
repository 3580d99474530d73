"""Load a classification model directory and classify texts: the Python entry point, the output
formats of seq2seq-classify, and the scores of seq2seq-evaluate for a classifier.

    from seq2seq import Classifier
    classifier = Classifier.load("runs/ag_news")
    classifier.classify(["Stocks fell on Wall Street ...", "The Red Sox won ..."])  # ['Business', 'Sports']
    classifier.probabilities(["The Red Sox won ..."])  # [{'Sports': 0.98, 'World': 0.01, ...}], highest first

An empty or whitespace-only text is not classified: its class is '' and its distribution {}, as a
blank line gives a blank line in every command. Texts are cut to the recipe's data.max_length
pieces, as in training.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from seq2seq.checkpoint import BEST, VOCAB_JOINT
from seq2seq.config import Recipe
from seq2seq.device import ROOM_DECODING_AUTO, for_decoding
from seq2seq.errors import UserError
from seq2seq.tasks.classification.data import encode_texts, label_ids, load_labels, read_labelled
from seq2seq.tasks.classification.metric import scores
from seq2seq.tasks.classification.model import TextClassifier, build_classifier, class_logits
from seq2seq.tasks.loading import load_task_weights, open_task_dir
from seq2seq.vocab import Vocab

DIGITS = 4  # probabilities in seq2seq-classify --probabilities lines are rounded to this many decimals


class Classifier:
    """A trained classifier with its vocabulary and class names, ready to classify strings.
    `precision`: 'auto', 'fp32', 'bf16' or 'int8', None for the recipe's decoding.precision."""

    def __init__(self, model: TextClassifier, vocab: Vocab, labels: list[str], recipe: Recipe,
                 device: torch.device, precision: str | None = None):
        model, self.precision = for_decoding(model, precision or recipe.decoding.precision, device,
                                             "decoding.precision" if precision is None else "precision",
                                             ROOM_DECODING_AUTO)
        self.model, self.vocab, self.labels = model.eval(), vocab, labels
        self.recipe, self.device = recipe, device

    @classmethod
    def load(cls, model_dir: str | Path, device: str = "auto", weights: str | Path = BEST,
             precision: str | None = None) -> "Classifier":
        """`weights`: a bare file name is looked up in the model directory; a path is used as is."""
        model_dir, recipe, meta = open_task_dir(model_dir, "classification", "a classifier",
                                                "use seq2seq-translate or seq2seq-summarize, or train a recipe "
                                                "with task: classification")
        labels = load_labels(model_dir, meta["tgt_vocab_size"])
        vocab = Vocab(model_dir / f"{VOCAB_JOINT}.model")
        if len(vocab) != meta["src_vocab_size"]:
            raise UserError(f"{vocab.path}: {len(vocab)} pieces, but meta.json says src_vocab_size "
                            f"{meta['src_vocab_size']}; the model directory mixes files of different models")
        model = build_classifier(recipe.model, recipe.classification, len(vocab), len(labels))
        model, dev = load_task_weights(model, model_dir, weights, device)
        return cls(model, vocab, labels, recipe, dev, precision)

    def distributions(self, texts: list[str], *, batch_size: int | None = None,
                      progress: bool = False) -> list[torch.Tensor | None]:
        """Each text's class distribution, (C,) in the order of `labels`; None for a blank text."""
        kept = [i for i, t in enumerate(texts) if t.strip()]
        ids, _ = encode_texts(self.vocab, [texts[i] for i in kept], self.recipe.data.max_length)
        logits = class_logits(self.model, ids, batch_size or self.recipe.decoding.sentences_per_batch(), self.device,
                              self.precision, progress)
        out: list[torch.Tensor | None] = [None] * len(texts)
        for i, row in zip(kept, logits.softmax(-1)):
            out[i] = row
        return out

    def probabilities(self, texts: list[str], *, batch_size: int | None = None,
                      progress: bool = False) -> list[dict[str, float]]:
        """Each text's {class name: probability}, most probable first; {} for a blank text."""
        return [{} if p is None else {self.labels[i]: float(p[i]) for i in p.argsort(descending=True).tolist()}
                for p in self.distributions(texts, batch_size=batch_size, progress=progress)]

    def classify(self, texts: list[str], *, batch_size: int | None = None, progress: bool = False) -> list[str]:
        """The most probable class of each text; '' for a blank text."""
        return ["" if p is None else self.labels[int(p.argmax())]
                for p in self.distributions(texts, batch_size=batch_size, progress=progress)]


def probability_line(distribution: dict[str, float]) -> str:
    """A line of seq2seq-classify --probabilities: one JSON object, {"label": the most probable
    class, "probabilities": {class: probability, most probable first}} (rounded to DIGITS
    decimals); a blank input line gives {"label": "", "probabilities": {}}."""
    label = next(iter(distribution), "")
    rounded = {name: round(p, DIGITS) for name, p in distribution.items()}
    return json.dumps({"label": label, "probabilities": rounded}, ensure_ascii=False)


def evaluate(args) -> int:
    """seq2seq-evaluate for a classifier: --src texts, --ref class names (line i for text i) ->
    accuracy and macro-F1; the arguments are seq2seq-evaluate's (seq2seq/cli/evaluate.py)."""
    from seq2seq.cli.common import check_sizes, write_output
    if args.beam_size is not None or args.metric != "bleu":
        raise UserError(f"{args.model_dir}: a classifier is scored by accuracy and macro-F1; --beam-size and "
                        "--metric apply to translation and summarisation models")
    if len(args.ref) != 1:
        raise UserError(f"{args.model_dir}: a classifier takes one --ref file (class names, one per line), "
                        f"got {len(args.ref)}")
    check_sizes(args, ("batch_size",))
    examples = read_labelled(Path(args.src), Path(args.ref[0]))
    classifier = Classifier.load(args.model_dir, args.device, args.weights, args.precision)
    label_ids(examples, classifier.labels)  # a class the model does not know: an error naming its line
    predicted = classifier.classify(examples.texts, batch_size=args.batch_size, progress=len(examples.texts) > 500)
    if args.output:
        write_output(predicted, args.output)
    result = {k: round(v, 2) for k, v in scores(predicted, examples.labels).items()}
    result.update(texts=len(predicted), classes=len(classifier.labels))
    print(json.dumps(result) if args.json else
          f"accuracy {result['accuracy']:.2f}  macro-F1 {result['macro_f1']:.2f}  ({len(predicted)} texts, "
          f"{len(classifier.labels)} classes)")
    return 0
