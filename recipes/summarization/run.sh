#!/usr/bin/env bash
# Train a summarisation recipe, then report ROUGE-1/2/L F1 on each split the recipe's data.test
# names (beam from the recipe; data.test=[...] on the command line picks others) and summarise
# three documents of the first with seq2seq-summarize.
#   bash recipes/summarization/run.sh RECIPE DATA_DIR MODEL_DIR [key.path=value ...] [--overwrite]
#   bash recipes/summarization/run.sh recipes/summarization/dialogsum.yaml ../shared/data/dialogsum runs/dialogsum
# DATA_DIR holds the splits as <split>.<data.src> and <split>.<data.tgt> (train.src, train.tgt,
# valid.src, valid.tgt: one document / summary per line); any <split>.ann*.<data.tgt> there are
# scored as further references too.
set -euo pipefail
usage="usage: run.sh RECIPE DATA_DIR MODEL_DIR [key.path=value ...]"
recipe=${1:?$usage}
data=${2:?$usage}
model=${3:?$usage}
shift 3

# the recipe's file suffixes, data set by name and test splits (overrides included): one value a
# line, then a split a line
values=$(seq2seq-train "$recipe" "$@" --print data.src --print data.tgt --print data.hub --print data.test)
mapfile -t values <<< "$values"
src=${values[0]} tgt=${values[1]} hub=${values[2]-} splits=("${values[@]:3}")
[ ${#splits[@]} -gt 0 ] || echo "warning: $recipe: data.test is empty; nothing will be scored" >&2
for split in ${splits[@]+"${splits[@]}"}; do  # said now, not after the training (data.hub writes them)
  for file in "$data/$split.$src" "$data/$split.$tgt"; do
    [ -n "$hub" ] || [ -f "$file" ] || {
      echo "error: $file: not found (a split named by data.test); nothing was trained" >&2; exit 2; }
  done
done

start=$(date +%s)
seq2seq-train "$recipe" --model-dir "$model" data.dir="$data" "$@"
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
    echo "== $split ROUGE, $(( ${#refs[@]} / 2 + 1 )) references"
    seq2seq-evaluate "$model" --src "$data/$split.$src" --ref "$data/$split.$tgt" "${refs[@]}" \
      --metric rouge --json | tee "$model/rouge_${split}_multi.json"
  fi
done
if [ ${#splits[@]} -gt 0 ]; then
  echo "== three ${splits[0]} documents through seq2seq-summarize"
  seq2seq-summarize "$model" < <(head -n 3 "$data/${splits[0]}.$src")  # (not a pipe: a reader that stops early is no failure)
fi
