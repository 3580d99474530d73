"""tools/bench.py for the task rooms (classification, language_model, tagging): training and
inference throughput, peak memory and MFU of a recipe of `task: classification | language_model
| tagging`, with the same entries and variants as translation.

The trainer is the room's own: its train() (seq2seq/tasks/*/training.py) reads and checks the
data, trains the vocabulary, builds the model and the room's TaskTrainer in a scratch model
directory, and is stopped just before training starts (its run_training is replaced by one that
returns the trainer). The bench then runs the trainer's own train_step over the epoch's own batch
plan: warm-up steps, then timed ones.

    training   tok/s: input positions (pieces of a text, words of a sentence, units of a language
               model's segment); texts/s (sentences for a tagger); steps/s; MFU (tools/flops.py)
    inference  classification: texts and pieces classified per second (the split's first N texts,
               in decoding.batch_size batches, as seq2seq-classify); tagging: sentences and words
               tagged per second (seq2seq-tag); language_model: units generated per second
               (greedy, one sample of --generate-units, as seq2seq-generate) and characters scored
               per second (the split's first N lines, language_model.streams rows, as validation)

N is --decode-sentences; the split is the recipe's last data.test, else data.valid. A model
directory as ENTRY gives its recipe; the timed inference uses the model after the timed steps,
whose weights do not change its cost (fixed lengths: no search ends early).
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from flops import TRAINING_FACTOR, classifier_terms, count, language_model_terms, tagger_terms
from measure import matmul_rates, model_in, peak_memory, reset_peak_memory, sync, timed_steps, utilisation
from seq2seq.checkpoint import VOCAB_JOINT
from seq2seq.config import Recipe
from seq2seq.tasks.classification import training as classification_training
from seq2seq.tasks.classification.data import encode_texts, read_split
from seq2seq.tasks.classification.model import class_logits
from seq2seq.tasks.language_model import training as language_model_training
from seq2seq.tasks.language_model.data import cut_rows, encode_text, read_text, stream, text_file
from seq2seq.tasks.language_model.generator import generate_units
from seq2seq.tasks.language_model.model import row_nats
from seq2seq.tasks.tagging import training as tagging_training
from seq2seq.tasks.tagging.data import TaggedSet, read_conll, split_file
from seq2seq.tasks.tagging.model import predict
from seq2seq.vocab import Vocab

ROOMS = {"classification": classification_training, "language_model": language_model_training,
         "tagging": tagging_training}
TERMS = {"classification": classifier_terms, "language_model": language_model_terms, "tagging": tagger_terms}


def build_trainer(recipe: Recipe, model_dir: Path):
    """The room's trainer, built by the room's train() into `model_dir` (new), without training.
    What train() prints goes to stderr: stdout is the bench's table."""
    room = ROOMS[recipe.task]

    def stop_before_training(trainer, model_dir, resume):
        return trainer

    with mock.patch.object(room, "run_training", stop_before_training), contextlib.redirect_stdout(sys.stderr):
        return room.train(recipe, model_dir)


def batch_amount(task: str, corpus, indices: np.ndarray) -> dict[str, float]:
    """How much of each tools/flops.py unit one training batch holds (no model run)."""
    if task == "language_model":
        return {"unit": float(corpus.batch(indices)[0].numel())}
    if task == "classification":
        return {"token": float(corpus.src_lengths[indices].sum()), "text": float(len(indices))}
    batch = corpus.batch(indices)  # tagging: the characters of the batch's distinct words
    return {"token": float(batch.lengths.sum()), "char": float(batch.char_lengths.sum())}


def measure_training(trainer, task: str, batches: list[np.ndarray], warmup: int, device: torch.device) -> dict:
    """Timed steps (measure.timed_steps) with their tokens, texts and forward FLOPs."""
    result = timed_steps(trainer, batches, warmup, device)
    amount: dict[str, float] = {}
    for indices in batches[warmup:]:
        for unit, n in batch_amount(task, trainer.corpus, indices).items():
            amount[unit] = amount.get(unit, 0.0) + n
    seconds, tokens = result["train_seconds"], amount.get("unit", amount.get("token"))
    fwd = count(TERMS[task](trainer.model), amount)
    train_flops = TRAINING_FACTOR * sum(fwd.values())
    result.update({"train_tok_s": tokens / seconds, "mflop_per_token": train_flops / tokens / 1e6,
                   "forward_mflop_per_token": {k: v / tokens / 1e6 for k, v in fwd.items()},
                   "train_flops": train_flops})
    if task != "language_model":
        result["train_texts_s"] = sum(len(b) for b in batches[warmup:]) / seconds
    return result


def _timed(run, device: torch.device) -> float:
    """Seconds of run() after one untimed call (warm-up)."""
    run()
    sync(device)
    start = time.perf_counter()
    run()
    sync(device)
    return time.perf_counter() - start


def measure_inference(model, trainer, recipe: Recipe, split: str, args, device: torch.device, precision: str) -> dict:
    """The room's own inference with `model` (the trainer's, or its int8 copy) in `precision` on
    the split's first --decode-sentences examples (see the module docstring)."""
    n, batch_size = args.decode_sentences, recipe.decoding.sentences_per_batch()
    if recipe.task == "classification":
        vocab = Vocab(trainer.model_dir / f"{VOCAB_JOINT}.model")
        ids = encode_texts(vocab, read_split(recipe, split).texts[:n], recipe.data.max_length)[0]
        seconds = _timed(lambda: class_logits(model, ids, batch_size, device, precision), device)
        return {"infer_texts": len(ids), "infer_texts_s": len(ids) / seconds,
                "infer_tok_s": sum(map(len, ids)) / seconds}
    if recipe.task == "tagging":
        t = recipe.tagging
        sentences = read_conll(split_file(recipe, split), t.tag_column, t.file_scheme)
        sentences = dataclasses.replace(sentences, words=sentences.words[:n], tags=None)  # untagged input
        data = TaggedSet.build(sentences, trainer.corpus.vocab, t.scheme)
        seconds = _timed(lambda: predict(model, data, batch_size, device, precision), device)
        return {"infer_texts": len(data.words), "infer_texts_s": len(data.words) / seconds,
                "infer_tok_s": int(data.src_lengths.sum()) / seconds}
    lines = read_text(text_file(recipe, split)).splitlines(keepends=True)[:n]  # language_model
    text = "".join(lines)
    inputs, targets = cut_rows(stream(encode_text(trainer.tgt_vocab, text)), recipe.language_model.streams)
    score = _timed(lambda: row_nats(model, inputs, targets, recipe.language_model.bptt_length, device, precision),
                   device)
    length = args.generate_units
    generate = _timed(lambda: generate_units(model, stream([]).tolist(), length, None, 1, device, precision), device)
    return {"infer_texts": len(lines), "score_chars_s": len(text) / score, "generate_units_s": length / generate}


def bench_task(name: str, recipe: Recipe, args, work: Path, device: torch.device, precisions: list[str]) -> dict:
    """Every figure of one task entry (a dict, as bench.bench_seq2seq's); inference in each of
    `precisions` (resolved decoding precisions)."""
    trainer = build_trainer(recipe, Path(tempfile.mkdtemp(prefix=f"{recipe.task}-", dir=work)) / "model")
    reset_peak_memory(device)  # (after the vocabulary's training: the peak of the steps and inference)
    precision = trainer.precision  # training.precision resolved: what the steps run in
    result = {"name": name, "task": recipe.task, "device": str(device), "threads": torch.get_num_threads(),
              "parameters": sum(p.numel() for p in trainer.model.parameters()), "trained_model": None,
              "compile": "-", "baseline": "-"}
    plan = trainer.epoch_batches(0)
    batches = [plan[i % len(plan)] for i in range(args.warmup + args.steps)]
    n = args.matmul_size or (8192 if device.type == "cuda" else 2048)
    before = matmul_rates(device, n)
    print(f"bench: {name}: training {args.warmup} + {args.steps} steps on {device} in {precision}", file=sys.stderr)
    result.update(measure_training(trainer, recipe.task, batches, args.warmup, device))
    result.update(utilisation(result, before, matmul_rates(device, n), result.pop("train_flops"), precision))
    trainer.optimizer.zero_grad(set_to_none=True)
    if args.decode_sentences > 0:
        split = recipe.data.test[-1] if recipe.data.test else recipe.data.valid
        result["decode_split"], result["decode_precisions"] = split, precisions
        for p in precisions:
            print(f"bench: {name}: inference on the first {args.decode_sentences} of {split!r}, {p}", file=sys.stderr)
            model = model_in(trainer.model, p, name, result)
            figures = measure_inference(model, trainer, recipe, split, args, device, p)
            result["infer_texts"] = figures.pop("infer_texts")
            result.update({f"{k}_{p}": v for k, v in figures.items()})
    result.update(peak_memory(device))
    return result
