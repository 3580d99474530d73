#!/usr/bin/env bash
# Train a language-model recipe, score its data.test splits (perplexity, bits per character) and
# print a sample.
#   bash recipes/language_model/run.sh DATA_DIR MODEL_DIR [RECIPE.yaml] [key.path=value ...]
#   bash recipes/language_model/run.sh ../shared/data/tinyshakespeare runs/tinyshakespeare recipes/language_model/tinyshakespeare.yaml
# RECIPE.yaml defaults to timemachine.yaml beside this script. DATA_DIR holds each split as
# <split>.<language_model.text_suffix> (txt): continuous text. The sample continues PREFIX (an
# environment variable; default: the first line of the first scored split) by LENGTH (default 500)
# characters, drawn from the nucleus of 0.9 at temperature 0.8, seed 0; it goes to MODEL_DIR/sample.txt.
set -euo pipefail
data=${1:?usage: run.sh DATA_DIR MODEL_DIR [RECIPE.yaml] [key.path=value ...]}
model=${2:?usage: run.sh DATA_DIR MODEL_DIR [RECIPE.yaml] [key.path=value ...]}
shift 2
recipe=$(dirname "$0")/timemachine.yaml
if [[ ${1:-} == *.yaml ]]; then
  recipe=$1
  shift
fi

# the recipe's file suffix and test splits (overrides included): one value a line
values=$(seq2seq-train "$recipe" "$@" --print language_model.text_suffix --print data.test)
mapfile -t values <<< "$values"
suffix=${values[0]} splits=("${values[@]:1}")
[ ${#splits[@]} -gt 0 ] || echo "warning: $recipe: data.test is empty; nothing will be scored" >&2
for split in ${splits[@]+"${splits[@]}"}; do  # said now, not after the training
  [ -f "$data/$split.$suffix" ] || {
    echo "error: $data/$split.$suffix: not found (a split named by data.test); nothing was trained" >&2; exit 2; }
done

seq2seq-train "$recipe" --model-dir "$model" data.dir="$data" "$@"
for split in ${splits[@]+"${splits[@]}"}; do
  echo "== $split"
  seq2seq-evaluate "$model" --src "$data/$split.$suffix" --json | tee -a "$model/scores.jsonl"
done
prefix=${PREFIX-$(head -n 1 "$data/${splits[0]:-valid}.$suffix")}
echo "== sample"
seq2seq-generate "$model" --prefix "$prefix" --length "${LENGTH:-500}" --sampling topp:0.9 --temperature 0.8 \
  --seed 0 --output "$model/sample.txt"
cat "$model/sample.txt"
