#!/usr/bin/env bash
# Train the Multi30k en->de reference model, then score the recipe's data.test splits (val and
# test_2016_flickr; data.test=[...] on the command line picks others), greedy and beam 5.
#   bash recipes/translation/multi30k.sh DATA_DIR MODEL_DIR [RECIPE.yaml] [key.path=value ...]
#   bash recipes/translation/multi30k.sh ../shared/data/multi30k runs/multi30k_en_de
# RECIPE.yaml defaults to multi30k_en_de.yaml beside this script (multi30k_en_de_fast.yaml: the
# fast variant).
# DATA_DIR holds the recipe's train, valid and test splits as <split>.<data.src> and
# <split>.<data.tgt> (train, val, test_2016_flickr .en/.de; one sentence per line).
set -euo pipefail
data=${1:?usage: multi30k.sh DATA_DIR MODEL_DIR [RECIPE.yaml] [key.path=value ...]}
model=${2:?usage: multi30k.sh DATA_DIR MODEL_DIR [RECIPE.yaml] [key.path=value ...]}
shift 2
recipe=$(dirname "$0")/multi30k_en_de.yaml
if [[ ${1:-} == *.yaml ]]; then
  recipe=$1
  shift
fi

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

seq2seq-train "$recipe" --model-dir "$model" data.dir="$data" "$@"
for split in ${splits[@]+"${splits[@]}"}; do
  for beam in 1 5; do
    echo "== $split beam $beam"
    seq2seq-evaluate "$model" --src "$data/$split.$src" --ref "$data/$split.$tgt" --beam-size "$beam" \
      --output "$model/$split.beam$beam.$tgt" --json | tee -a "$model/scores.jsonl"
  done
done
