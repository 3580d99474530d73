#!/usr/bin/env bash
# The README's main job: generate the date task, train, decode, score the recipe's data.test
# splits (test; data.test=[...] on the command line picks others), draw attention.
#   bash recipes/demo/run.sh [WORK_DIR] [key.path=value ...]      (WORK_DIR defaults to runs/demo)
set -euo pipefail
here=$(dirname "$0")
work=${1:-runs/demo}
shift || true

# the recipe's file suffixes and test splits (overrides included): one value a line, then a split
# a line
values=$(seq2seq-train "$here/dates.yaml" "$@" --print data.src --print data.tgt --print data.test)
mapfile -t values <<< "$values"
src=${values[0]} tgt=${values[1]} splits=("${values[@]:2}")
[ ${#splits[@]} -gt 0 ] || echo "warning: $here/dates.yaml: data.test is empty; nothing will be scored" >&2

python "$here/make_dates.py" "$work/data"
for split in ${splits[@]+"${splits[@]}"}; do  # said now, not after the training
  for file in "$work/data/$split.$src" "$work/data/$split.$tgt"; do
    [ -f "$file" ] || {
      echo "error: $file: not found (a split named by data.test); nothing was trained" >&2; exit 2; }
  done
done

seq2seq-train "$here/dates.yaml" --model-dir "$work/model" data.dir="$work/data" --overwrite "$@"
printf 'tuesday, march 3, 2015\n12/25/99\nthe 1st of july 2021\n' | seq2seq-translate "$work/model"
for split in ${splits[@]+"${splits[@]}"}; do
  echo "== $split"
  seq2seq-evaluate "$work/model" --src "$work/data/$split.$src" --ref "$work/data/$split.$tgt" \
    --output "$work/$split.hyp"
done
python "$here/../../tools/plot_attention.py" "$work/model" "saturday, 9 may 1987" "$work/attention.png"
