"""From a translation or summarisation recipe to a trained model directory: data checks,
vocabulary, model, the seq2seq Trainer (seq2seq/trainer.py)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import torch
from tqdm import tqdm

from seq2seq.batch import collate
from seq2seq.checkpoint import load_meta, save_meta
from seq2seq.config import Recipe, to_dict
from seq2seq.device import precision_line, resolve_precision
from seq2seq.distributed import rank_zero_first, setup
from seq2seq.errors import UserError
from seq2seq.lines import read_lines
from seq2seq.tasks.trainer import check_model_dir, install_vocabs, resume_from_latest
from seq2seq.tasks.translation.compiling import compile_decoder_step
from seq2seq.tasks.translation.data import check_no_empty_pairs, check_parallel, data_files, encode_pairs, load_corpus
from seq2seq.tasks.translation.init_from import check_init_from, copy_vocabs, load_init_weights
from seq2seq.tasks.translation.model import build_model
from seq2seq.tasks.translation.validation import Validation
from seq2seq.trainer import Trainer
from seq2seq.vocab import build_vocabs, load_vocabs


def _saved_vocabs(recipe: Recipe, model_dir: Path):
    """The vocabularies of the run being resumed, which must have the same model and vocab."""
    saved, meta = load_meta(model_dir)
    if to_dict(saved)["model"] != to_dict(recipe)["model"] or saved.vocab != recipe.vocab:
        raise UserError(f"{model_dir}: the recipe's model or vocab section differs from the one "
                        "saved there; resume with the same recipe")
    return load_vocabs(model_dir, recipe.vocab.joint, meta)


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
    source_meta = check_init_from(recipe, Path(init_from), resume) if init_from is not None else None
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
                src_vocab, tgt_vocab = install_vocabs(Path(staging), model_dir, recipe, overwrite)
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
        resume_from_latest(trainer, model_dir, say)
    trainer.train()
    return trainer


def _validation(recipe: Recipe, valid_src: Path, valid_tgt: Path, src_vocab, tgt_vocab) -> Validation:
    """Validation ids (extended with copy, from the cut source), sides cut to
    data.max_source_length / max_target_length if set."""
    vs, vt = read_lines(valid_src), read_lines(valid_tgt)
    src, tgt, oovs, _ = encode_pairs(src_vocab, tgt_vocab, vs, vt, recipe.model.copy,
                                     recipe.data.max_source_length, recipe.data.max_target_length)
    return Validation(src, tgt, vt, oovs)
