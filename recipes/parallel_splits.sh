# Sourced by the translation and summarisation scripts (not run): after `parallel_splits RECIPE
# DATA [key.path=value ...]`, src, tgt, hub and splits hold the recipe's file suffixes, data set by
# name and data.test splits (overrides included), and every split's two files are checked now,
# before any training (not needed with data.hub, which writes them).
parallel_splits() {
  local recipe=$1 data=$2 split file
  shift 2
  # one value a line, then a split a line
  values=$(seq2seq-train "$recipe" "$@" --print data.src --print data.tgt --print data.hub --print data.test)
  mapfile -t values <<< "$values"
  src=${values[0]} tgt=${values[1]} hub=${values[2]-} splits=("${values[@]:3}")
  [ ${#splits[@]} -gt 0 ] || echo "warning: $recipe: data.test is empty; nothing will be scored" >&2
  for split in ${splits[@]+"${splits[@]}"}; do
    for file in "$data/$split.$src" "$data/$split.$tgt"; do
      [ -n "$hub" ] || [ -f "$file" ] || {
        echo "error: $file: not found (a split named by data.test); nothing was trained" >&2; exit 2; }
    done
  done
}
