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

source "$(dirname "$0")/../parallel_splits.sh"
parallel_splits "$recipe" "$data" "$@"  # sets src, tgt, hub, splits; checks the test files now

seq2seq-train "$recipe" --model-dir "$model" data.dir="$data" "$@"
for split in ${splits[@]+"${splits[@]}"}; do
  for beam in 1 5; do
    echo "== $split beam $beam"
    seq2seq-evaluate "$model" --src "$data/$split.$src" --ref "$data/$split.$tgt" --beam-size "$beam" \
      --output "$model/$split.beam$beam.$tgt" --json | tee -a "$model/scores.jsonl"
  done
done
