"""Load a tagging model directory and tag sentences: the Python entry point, the output format of
seq2seq-tag, and the scores of seq2seq-evaluate for a tagger.

    from seq2seq import Tagger
    tagger = Tagger.load("runs/conll2003")
    tagger.tag([["EU", "rejects", "German", "call"], ["Peter", "Blackburn"]])
    # [['B-ORG', 'O', 'B-MISC', 'O'], ['B-PER', 'I-PER']]

Tags come out in IOB2 (BIO) whatever scheme the model learned (tagging.scheme); an empty sentence
gets no tags. Words are looked up as the recipe says (tagging.lowercase); a word the model never
saw is UNK, spelled out to the character encoder.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from seq2seq.checkpoint import BEST
from seq2seq.config import Recipe
from seq2seq.device import ROOM_DECODING_AUTO, for_decoding
from seq2seq.errors import UserError
from seq2seq.tasks.loading import load_task_weights, open_task_dir
from seq2seq.tasks.tagging.data import Sentences, TaggedSet, check_known, read_conll
from seq2seq.tasks.tagging.metric import per_type, scores
from seq2seq.tasks.tagging.model import SequenceTagger, build_tagger, predict
from seq2seq.tasks.tagging.schemes import convert
from seq2seq.tasks.tagging.vocab import Vocabularies


class Tagger:
    """A trained tagger with its vocabularies, ready to tag lists of tokens. `precision`: 'auto',
    'fp32', 'bf16' or 'int8', None for the recipe's decoding.precision."""

    def __init__(self, model: SequenceTagger, vocab: Vocabularies, recipe: Recipe, device: torch.device,
                 precision: str | None = None):
        model, self.precision = for_decoding(model, precision or recipe.decoding.precision, device,
                                             "decoding.precision" if precision is None else "precision",
                                             ROOM_DECODING_AUTO)
        self.model, self.vocab, self.recipe, self.device = model.eval(), vocab, recipe, device

    @classmethod
    def load(cls, model_dir: str | Path, device: str = "auto", weights: str | Path = BEST,
             precision: str | None = None) -> "Tagger":
        """`weights`: a bare file name is looked up in the model directory; a path is used as is."""
        model_dir, recipe, meta = open_task_dir(model_dir, "tagging", "a tagger", "train a recipe with task: tagging")
        vocab = Vocabularies.load(model_dir, meta["src_vocab_size"], meta["tgt_vocab_size"])
        model = build_tagger(recipe.model, recipe.tagging, len(vocab.words), len(vocab.chars), len(vocab.tags))
        model, dev = load_task_weights(model, model_dir, weights, device)
        return cls(model, vocab, recipe, dev, precision)

    def tag(self, sentences: list[list[str]], *, batch_size: int | None = None,
            progress: bool = False) -> list[list[str]]:
        """The IOB2 tags of each sentence (a list of tokens; [] gives [])."""
        for i, sentence in enumerate(sentences):
            if isinstance(sentence, str) or not all(isinstance(w, str) and w for w in sentence):
                raise UserError(f"sentence {i}: expected a list of non-empty token strings, got {sentence!r:.80}")
        kept = [i for i, s in enumerate(sentences) if s]
        data = TaggedSet.build(Sentences(Path("<input>"), [list(sentences[i]) for i in kept], None, []),
                               self.vocab, self.recipe.tagging.scheme)
        ids, _, _ = predict(self.model, data, batch_size or self.recipe.decoding.sentences_per_batch(), self.device,
                            self.precision, progress)
        out: list[list[str]] = [[] for _ in sentences]
        for i, row in zip(kept, ids):
            out[i] = convert([self.vocab.tags[t] for t in row], self.recipe.tagging.scheme, "iob2")
        return out


def conll_lines(sentences: list[list[str]], tags: list[list[str]]) -> list[str]:
    """seq2seq-tag's output: a `token TAG` line for each token, and a blank line after each sentence
    (an empty sentence is the blank line alone)."""
    out = []
    for words, row in zip(sentences, tags):
        out.extend(f"{w} {t}" for w, t in zip(words, row))
        out.append("")
    return out


def evaluate(args) -> int:
    """seq2seq-evaluate for a tagger: --src a CoNLL file with gold tags (the column and scheme of
    the model's recipe) -> entity precision, recall, F1 and token accuracy; the arguments are
    seq2seq-evaluate's (seq2seq/cli/evaluate.py)."""
    from seq2seq.cli.common import check_sizes, write_output
    if args.ref or args.beam_size is not None or args.metric != "bleu":
        raise UserError(f"{args.model_dir}: a tagger is scored on --src alone (a CoNLL file holding the gold tags) "
                        "by entity F1; --ref, --beam-size and --metric apply to translation and summarisation")
    check_sizes(args, ("batch_size",))
    tagger = Tagger.load(args.model_dir, args.device, args.weights, args.precision)
    t = tagger.recipe.tagging
    gold = read_conll(Path(args.src), t.tag_column, t.file_scheme)
    check_known(gold, tagger.vocab)  # an entity type the model does not know: an error naming its line
    predicted = tagger.tag(gold.words, batch_size=args.batch_size, progress=len(gold.words) > 500)
    if args.output:
        write_output(conll_lines(gold.words, predicted), args.output)
    result = {k: round(v, 2) for k, v in scores(predicted, gold.tags).items()}
    kinds = {k: {m: round(v, 2) for m, v in row.items()} for k, row in per_type(predicted, gold.tags).items()}
    tokens = sum(map(len, gold.words))
    result.update(sentences=len(gold.words), tokens=tokens, per_type=kinds)
    print(json.dumps(result) if args.json else
          f"precision {result['precision']:.2f}  recall {result['recall']:.2f}  F1 {result['f1']:.2f}  token accuracy "
          f"{result['token_accuracy']:.2f}  ({len(gold.words)} sentences, {tokens} tokens; entities as conlleval "
          "counts them, by seqeval)\n" + "  ".join(f"{k} F1 {v['f1']:.2f} ({v['support']})" for k, v in kinds.items()))
    return 0
