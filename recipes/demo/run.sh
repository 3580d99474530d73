#!/usr/bin/env bash
# The README's main job: generate the date task, train, decode, score, draw attention.
#   bash recipes/demo/run.sh [WORK_DIR] [key.path=value ...]      (WORK_DIR defaults to runs/demo)
set -euo pipefail
here=$(dirname "$0")
work=${1:-runs/demo}
shift || true
python "$here/make_dates.py" "$work/data"
seq2seq-train "$here/dates.yaml" --model-dir "$work/model" data.dir="$work/data" --overwrite "$@"
printf 'tuesday, march 3, 2015\n12/25/99\nthe 1st of july 2021\n' | seq2seq-translate "$work/model"
seq2seq-evaluate "$work/model" --src "$work/data/test.src" --ref "$work/data/test.tgt" \
  --output "$work/test.hyp"
python "$here/../../tools/plot_attention.py" "$work/model" "saturday, 9 may 1987" "$work/attention.png"
