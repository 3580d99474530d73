"""Translation (`task: translation`, the default): a recurrent encoder, attention and a recurrent
decoder (optionally conditional, with copy and coverage) over sentencepiece pieces; label-smoothed
cross-entropy; BLEU and chrF; beam search, greedy search or sampling. Data: PREFIX.SRC + PREFIX.TGT,
parallel lines, or a data set by name (data.hub).

    data.py         the files of a split, checks, the Arrow-backed corpus (datasets)
    extended.py     copy's extended vocabulary: an id for each source-only piece
    model.py        Seq2Seq and build_model: the one place recipe values become its modules
    metric.py       BLEU, chrF (sacreBLEU); training.valid_metric's VALID_METRICS
    validation.py   the loss and a greedy decoding of the validation set, scored
    training.py     train: data, vocabulary, model and the seq2seq Trainer (seq2seq/trainer.py)
    init_from.py    --init-from: another run's weights and vocabulary start a new run
    compiling.py    training.compile: torch.compile of the decoder step
    translator.py   Translator (loading, translating, n-best, sampling, attention) and evaluate
    ensemble.py     Ensemble: several models searched as one (the mean of their log-probabilities)
    plot.py         attention heatmaps (tools/plot_attention.py)

The summarisation room trains and evaluates with this one's code (seq2seq/tasks/summarization/).
"""

from __future__ import annotations

from pathlib import Path

from seq2seq.config import Recipe
from seq2seq.tasks.translation.translator import Translator, evaluate

__all__ = ["Translator", "evaluate", "train"]


def train(recipe: Recipe, model_dir: Path, *, resume: bool = False, overwrite: bool = False,
          init_from: Path | None = None):
    """Train a translation or summarisation recipe into `model_dir` (training.py, imported when
    called: it brings `datasets` and the trainer's matplotlib, which translating does without);
    `init_from`: another run's model directory whose weights and vocabulary start this run."""
    from seq2seq.tasks.translation.training import train as train_seq2seq
    return train_seq2seq(recipe, model_dir, resume=resume, overwrite=overwrite, init_from=init_from)
