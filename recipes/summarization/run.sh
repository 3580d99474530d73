#!/usr/bin/env bash
# Train a summarisation recipe, then report ROUGE-1/2/L F1 on the validation split (beam from
# the recipe) and summarise three validation documents with seq2seq-summarize.
#   bash recipes/summarization/run.sh RECIPE DATA_DIR MODEL_DIR [key.path=value ...] [--overwrite]
#   bash recipes/summarization/run.sh recipes/summarization/dialogsum.yaml ../shared/data/dialogsum runs/dialogsum
# DATA_DIR holds train.src, train.tgt, valid.src, valid.tgt (one document / summary per line);
# any valid.ann*.tgt there are scored as further references too.
set -euo pipefail
usage="usage: run.sh RECIPE DATA_DIR MODEL_DIR [key.path=value ...]"
recipe=${1:?$usage}
data=${2:?$usage}
model=${3:?$usage}
shift 3

start=$(date +%s)
seq2seq-train "$recipe" --model-dir "$model" data.dir="$data" "$@"
echo "training wall time: $(( $(date +%s) - start )) s"

echo "== validation ROUGE, $model"
seq2seq-evaluate "$model" --src "$data/valid.src" --ref "$data/valid.tgt" --metric rouge \
  --output "$model/valid.summaries" --json | tee "$model/rouge_valid.json"
refs=()
for extra in "$data"/valid.ann*.tgt; do
  [ -e "$extra" ] && refs+=(--ref "$extra")
done
if [ ${#refs[@]} -gt 0 ]; then
  echo "== validation ROUGE, $(( ${#refs[@]} / 2 + 1 )) references"
  seq2seq-evaluate "$model" --src "$data/valid.src" --ref "$data/valid.tgt" "${refs[@]}" \
    --metric rouge --json | tee "$model/rouge_valid_multi.json"
fi
echo "== three validation documents through seq2seq-summarize"
head -n 3 "$data/valid.src" | seq2seq-summarize "$model"
