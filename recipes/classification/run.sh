#!/usr/bin/env bash
# Train a classification recipe, then score its data.test splits (accuracy and macro-F1).
#   bash recipes/classification/run.sh DATA_DIR MODEL_DIR [RECIPE.yaml] [key.path=value ...]
#   bash recipes/classification/run.sh ../shared/data/ag_news_8k runs/ag_news
# RECIPE.yaml defaults to ag_news.yaml beside this script. DATA_DIR holds each split as
# <split>.<classification.text_suffix> and <split>.<classification.label_suffix> (txt, label):
# one text / one class name per line. Each split's predictions go to MODEL_DIR/<split>.predicted.
set -euo pipefail
data=${1:?usage: run.sh DATA_DIR MODEL_DIR [RECIPE.yaml] [key.path=value ...]}
model=${2:?usage: run.sh DATA_DIR MODEL_DIR [RECIPE.yaml] [key.path=value ...]}
shift 2
recipe=$(dirname "$0")/ag_news.yaml
if [[ ${1:-} == *.yaml ]]; then
  recipe=$1
  shift
fi

# the recipe's file suffixes and test splits (overrides included): one value a line, then a split a line
values=$(seq2seq-train "$recipe" "$@" --print classification.text_suffix --print classification.label_suffix \
  --print data.test)
mapfile -t values <<< "$values"
text=${values[0]} label=${values[1]} splits=("${values[@]:2}")
[ ${#splits[@]} -gt 0 ] || echo "warning: $recipe: data.test is empty; nothing will be scored" >&2

seq2seq-train "$recipe" --model-dir "$model" data.dir="$data" "$@"
for split in ${splits[@]+"${splits[@]}"}; do
  echo "== $split"
  seq2seq-evaluate "$model" --src "$data/$split.$text" --ref "$data/$split.$label" \
    --output "$model/$split.predicted" --json | tee -a "$model/scores.jsonl"
done
