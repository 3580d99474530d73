#!/usr/bin/env bash
# Train a tagging recipe, then score its data.test splits (entity precision, recall and F1; token accuracy).
#   bash recipes/tagging/run.sh DATA_DIR MODEL_DIR [RECIPE.yaml] [key.path=value ...]
#   bash recipes/tagging/run.sh ../shared/data/conll2003 runs/conll2003
# RECIPE.yaml defaults to conll2003_ner.yaml beside this script. DATA_DIR holds each split as
# <split>.<tagging.suffix> (conll): CoNLL columns, the word first and the tag in tagging.tag_column.
# Each split's tags go to MODEL_DIR/<split>.tagged ('token TAG' lines); the scores to MODEL_DIR/scores.jsonl.
set -euo pipefail
data=${1:?usage: run.sh DATA_DIR MODEL_DIR [RECIPE.yaml] [key.path=value ...]}
model=${2:?usage: run.sh DATA_DIR MODEL_DIR [RECIPE.yaml] [key.path=value ...]}
shift 2
recipe=$(dirname "$0")/conll2003_ner.yaml
if [[ ${1:-} == *.yaml ]]; then
  recipe=$1
  shift
fi

# the recipe's file suffix and test splits (overrides included): one value a line, then a split a line
values=$(seq2seq-train "$recipe" "$@" --print tagging.suffix --print data.test)
mapfile -t values <<< "$values"
suffix=${values[0]} splits=("${values[@]:1}")
[ ${#splits[@]} -gt 0 ] || echo "warning: $recipe: data.test is empty; nothing will be scored" >&2

seq2seq-train "$recipe" --model-dir "$model" data.dir="$data" "$@"
for split in ${splits[@]+"${splits[@]}"}; do
  echo "== $split"
  seq2seq-evaluate "$model" --src "$data/$split.$suffix" --output "$model/$split.tagged" --json \
    | tee -a "$model/scores.jsonl"
done
