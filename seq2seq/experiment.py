"""From a recipe to a trained model directory: data checks, vocabulary, model, trainer."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import torch
from tqdm import tqdm

from seq2seq.checkpoint import (CHECKPOINTS, atomic_write, clear_model_dir, holds_model, list_checkpoints, load_meta,
                                save_meta)
from seq2seq.compiling import compile_decoder_step
from seq2seq.config import Recipe, to_dict
from seq2seq.batch import collate
from seq2seq.data import check_no_empty_pairs, check_parallel, encode_pairs, load_corpus, read_lines
from seq2seq.device import precision_line, resolve_precision
from seq2seq.distributed import rank_zero_first, setup
from seq2seq.errors import UserError
from seq2seq.hub import hub_files, uses_hub
from seq2seq.init_from import check_init_from, copy_vocabs, load_init_weights
from seq2seq.model import build_model
from seq2seq.trainer import Trainer
from seq2seq.validation import Validation
from seq2seq.vocab import build_vocabs, load_vocabs

def data_files(recipe: Recipe, prefix: str) -> tuple[Path, Path]:
    """The source and target files of a split; a missing one is named with what to put there."""
    d = recipe.data
    if uses_hub(d):  # data.hub: the split is written into data.dir from a data set by name first
        return hub_files(d, prefix)
    files = Path(d.dir) / f"{prefix}.{d.src}", Path(d.dir) / f"{prefix}.{d.tgt}"
    for f in files:
        if not f.is_file():
            what = "is not a file" if f.exists() else "not found"
            raise UserError(f"{f}: {what} (data.dir={d.dir!r}); put the {prefix!r} split there as "
                            f"{prefix}.{d.src} and {prefix}.{d.tgt}, one sentence per line")
    return files


def check_model_dir(model_dir: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to write into a directory that holds a model unless told to; writes nothing."""
    if resume and overwrite:
        raise UserError("--resume and --overwrite exclude each other")
    if model_dir.exists() and not model_dir.is_dir():
        raise UserError(f"{model_dir}: exists and is not a directory")
    if holds_model(model_dir) and not (resume or overwrite):
        raise UserError(f"{model_dir}: already holds a model; pass --resume to continue it or "
                        "--overwrite to replace it")
    if resume and not holds_model(model_dir):
        raise UserError(f"{model_dir}: nothing to resume (no meta.json or checkpoints)")


def _saved_vocabs(recipe: Recipe, model_dir: Path):
    """The vocabularies of the run being resumed, which must have the same model and vocab."""
    saved, meta = load_meta(model_dir)
    if to_dict(saved)["model"] != to_dict(recipe)["model"] or saved.vocab != recipe.vocab:
        raise UserError(f"{model_dir}: the recipe's model or vocab section differs from the one "
                        "saved there; resume with the same recipe")
    return load_vocabs(model_dir, recipe.vocab.joint, meta)


def _install_vocabs(staging: Path, model_dir: Path, recipe: Recipe, overwrite: bool):
    """Move vocabularies trained aside (in `staging`) into the model directory, replacing an
    earlier run's with --overwrite; called once the model is built."""
    if overwrite:
        clear_model_dir(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    for f in staging.iterdir():
        atomic_write(model_dir / f.name, lambda p, f=f: shutil.copyfile(f, p))
    return load_vocabs(model_dir, recipe.vocab.joint)


def check_inputs(recipe: Recipe, model_dir: Path, resume: bool, overwrite: bool) -> list[Path]:
    """Everything a run reads, checked before anything is written; returns the data files
    [train source, train target, valid source, valid target]."""
    files = [*data_files(recipe, recipe.data.train), *data_files(recipe, recipe.data.valid)]
    check_parallel(files[0], files[1])
    check_parallel(files[2], files[3])
    if recipe.data.empty_lines == "error":
        check_no_empty_pairs(files[0], files[1])
    check_model_dir(model_dir, resume, overwrite)
    return files


def train(recipe: Recipe, model_dir: Path, resume: bool = False, overwrite: bool = False,
          init_from: Path | None = None) -> Trainer:
    """Train the recipe into `model_dir` (or continue the run there); under torchrun, one process
    of a data-parallel run (rank 0 writes the model directory, the others read it). `init_from`:
    another run's model directory whose weights and vocabulary start this run (init_from.py).

    Inputs are checked, the vocabularies trained aside and the model built before anything is
    written; a run that fails before training leaves no new model directory behind.
    """
    from seq2seq.tasks import TASKS
    source_meta = check_init_from(recipe, Path(init_from), resume) if init_from is not None else None
    if recipe.task in TASKS:  # classification: trained in its own room (seq2seq/tasks/)
        return TASKS[recipe.task].train(recipe, model_dir, resume=resume, overwrite=overwrite)
    model_dir = Path(model_dir)
    train_src, train_tgt, valid_src, valid_tgt = check_inputs(recipe, model_dir, resume, overwrite)
    cfg = recipe.training
    world, device = setup(cfg.device, cfg.dist_timeout_minutes)
    precision = resolve_precision(cfg.precision, device)  # 'fp32' or 'bf16', as the Trainer resolves it
    say = tqdm.write if world.is_main else (lambda _: None)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed + world.rank)
    created = not model_dir.exists()
    try:
        # rank 0 first (vocabularies, Arrow cache), then the others; an error on any rank ends all
        with tempfile.TemporaryDirectory(prefix="seq2seq-vocab-") as staging, rank_zero_first(world, device):
            if resume:
                src_vocab, tgt_vocab = _saved_vocabs(recipe, model_dir)
            elif world.is_main and init_from is not None:  # its files, so that the ids agree
                src_vocab, tgt_vocab = copy_vocabs(Path(init_from), Path(staging), recipe.vocab.joint, source_meta)
            elif world.is_main:
                src_vocab, tgt_vocab = build_vocabs(train_src, train_tgt, Path(staging), recipe.vocab)
            else:
                src_vocab, tgt_vocab = load_vocabs(model_dir, recipe.vocab.joint)
            corpus = load_corpus(train_src, train_tgt, src_vocab, tgt_vocab, recipe.data,
                                 copy=recipe.model.copy, check=False)  # check_inputs compared them
            model = build_model(recipe.model, len(src_vocab), len(tgt_vocab), cfg.teacher_forcing)
            if init_from is not None:
                say(load_init_weights(model, Path(init_from)))
            if world.is_main and not resume:
                src_vocab, tgt_vocab = _install_vocabs(Path(staging), model_dir, recipe, overwrite)
            if world.is_main:
                save_meta(model_dir, recipe, len(src_vocab), len(tgt_vocab), recipe.task, precision)
    except BaseException:
        if created and world.is_main:
            shutil.rmtree(model_dir, ignore_errors=True)
        raise
    model = model.to(device)
    for line in corpus.report(recipe.data):
        say(line)
    valid = _validation(recipe, valid_src, valid_tgt, src_vocab, tgt_vocab)
    n_params = sum(p.numel() for p in model.parameters())
    ranks = f" x {world.size} processes" if world.distributed else ""
    say(f"model: {n_params / 1e6:.2f}M parameters on {device}{ranks}")
    say(precision_line(cfg.precision, device))
    if cfg.compile:
        probe = collate(*corpus.pairs(corpus.usable[:4])).to(device)
        say(f"compile: decoder step {compile_decoder_step(model, probe, device, precision)}")
    trainer = Trainer(model, recipe, model_dir, corpus=corpus, valid=valid, tgt_vocab=tgt_vocab, device=device,
                      world=world)
    if resume:
        _resume_from_latest(trainer, model_dir, say)
    trainer.train()
    return trainer


def _validation(recipe: Recipe, valid_src: Path, valid_tgt: Path, src_vocab, tgt_vocab) -> Validation:
    """Validation ids (extended with copy, from the cut source), sides cut to
    data.max_source_length / max_target_length if set."""
    vs, vt = read_lines(valid_src), read_lines(valid_tgt)
    src, tgt, oovs, _ = encode_pairs(src_vocab, tgt_vocab, vs, vt, recipe.model.copy,
                                     recipe.data.max_source_length, recipe.data.max_target_length)
    return Validation(src, tgt, vt, oovs)


def _resume_from_latest(trainer: Trainer, model_dir: Path, say=tqdm.write) -> None:
    """Continue from the newest readable checkpoint; corrupt ones are reported and passed over."""
    for path in list_checkpoints(model_dir):
        try:
            trainer.resume(path)
        except UserError as e:
            say(f"warning: {e}; trying an older checkpoint")
            continue
        say(f"resuming from {path} (step {trainer.progress.step}, epoch "
                   f"{trainer.progress.epoch + 1}, batch {trainer.progress.batch_in_epoch})")
        return
    raise UserError(f"{model_dir / CHECKPOINTS}: no readable checkpoint to resume from; start again "
                    "with --overwrite")
