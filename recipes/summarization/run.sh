#!/usr/bin/env bash
# Train a summarisation recipe, then report ROUGE-1/2/L F1 on each split the recipe's data.test
# names (beam from the recipe; data.test=[...] on the command line picks others) and summarise
# three documents of the first with seq2seq-summarize.
#   bash recipes/summarization/run.sh RECIPE DATA_DIR MODEL_DIR [key.path=value ...] [--overwrite]
#   bash recipes/summarization/run.sh recipes/summarization/dialogsum.yaml ../shared/data/dialogsum runs/dialogsum
# A recipe with training.last_phase (DialogSum: copy first, coverage last) is trained in two runs:
# the recipe into MODEL_DIR_first_phase, then from its best weights (--init-from) the recipe with
# the last phase's overrides into MODEL_DIR, which is scored.
# DATA_DIR holds the splits as <split>.<data.src> and <split>.<data.tgt> (train.src, train.tgt,
# valid.src, valid.tgt: one document / summary per line); any <split>.ann*.<data.tgt> there are
# scored as further references too (each document's best reference, and the mean over them).
set -euo pipefail
usage="usage: run.sh RECIPE DATA_DIR MODEL_DIR [key.path=value ...]"
recipe=${1:?$usage}
data=${2:?$usage}
model=${3:?$usage}
shift 3

source "$(dirname "$0")/../parallel_splits.sh"
parallel_splits "$recipe" "$data" "$@"  # sets src, tgt, hub, splits; checks the test files now

start=$(date +%s)
mapfile -t last_phase < <(seq2seq-train "$recipe" "$@" --print training.last_phase)
if [ ${#last_phase[@]} -gt 0 ]; then
  # training.last_phase: the recipe trains into MODEL_DIR_first_phase, then its last phase (the
  # recipe with those overrides) starts from that run's best weights into MODEL_DIR
  seq2seq-train "$recipe" --model-dir "${model}_first_phase" data.dir="$data" "$@"
  echo "first phase wall time: $(( $(date +%s) - start )) s"
  seq2seq-train "$recipe" --model-dir "$model" --init-from "${model}_first_phase" data.dir="$data" "$@" \
    "${last_phase[@]}" "training.last_phase=[]"
else
  seq2seq-train "$recipe" --model-dir "$model" data.dir="$data" "$@"
fi
echo "training wall time: $(( $(date +%s) - start )) s"

for split in ${splits[@]+"${splits[@]}"}; do
  echo "== $split ROUGE, $model"
  seq2seq-evaluate "$model" --src "$data/$split.$src" --ref "$data/$split.$tgt" --metric rouge \
    --output "$model/$split.summaries" --json | tee "$model/rouge_$split.json"
  refs=()
  for extra in "$data/$split".ann*."$tgt"; do
    [ -e "$extra" ] && refs+=(--ref "$extra")
  done
  if [ ${#refs[@]} -gt 0 ]; then
    for multi in best mean; do  # each document's best-scoring reference, or the mean over them
      echo "== $split ROUGE, $(( ${#refs[@]} / 2 + 1 )) references, $multi"
      seq2seq-evaluate "$model" --src "$data/$split.$src" --ref "$data/$split.$tgt" "${refs[@]}" \
        --metric rouge --multi-ref $multi --json | tee "$model/rouge_${split}_multi_$multi.json"
    done
  fi
done
if [ ${#splits[@]} -gt 0 ]; then
  echo "== three ${splits[0]} documents through seq2seq-summarize"
  seq2seq-summarize "$model" < <(head -n 3 "$data/${splits[0]}.$src")  # (not a pipe: a reader that stops early is no failure)
fi
