#!/usr/bin/env bash
# Train the Multi30k en->de reference model, then score val and test_2016_flickr, greedy and beam 5.
#   bash recipes/translation/multi30k.sh DATA_DIR MODEL_DIR [RECIPE.yaml] [key.path=value ...]
#   bash recipes/translation/multi30k.sh ../shared/data/multi30k runs/multi30k_en_de
# RECIPE.yaml defaults to multi30k_en_de.yaml beside this script (multi30k_en_de_fast.yaml: the
# fast variant).
# DATA_DIR holds train, val and test_2016_flickr .en/.de (one sentence per line).
set -euo pipefail
data=${1:?usage: multi30k.sh DATA_DIR MODEL_DIR [RECIPE.yaml] [key.path=value ...]}
model=${2:?usage: multi30k.sh DATA_DIR MODEL_DIR [RECIPE.yaml] [key.path=value ...]}
shift 2
recipe=$(dirname "$0")/multi30k_en_de.yaml
if [[ ${1:-} == *.yaml ]]; then
  recipe=$1
  shift
fi

seq2seq-train "$recipe" --model-dir "$model" data.dir="$data" "$@"
for split in val test_2016_flickr; do
  for beam in 1 5; do
    echo "== $split beam $beam"
    seq2seq-evaluate "$model" --src "$data/$split.en" --ref "$data/$split.de" --beam-size "$beam" \
      --output "$model/$split.beam$beam.de" --json | tee -a "$model/scores.jsonl"
  done
done
