#!/usr/bin/env bash
# The README's study example in WORK_DIR (outside the source tree): a study from scratch, then the same
# program with --resume, which must find all six runs finished in the checkpoint, run none of them,
# leave the CSV file as it was and print the same results.
#   readme_study.sh PROGRAM WORK_DIR
set -euo pipefail
program=$1 work=$2
rm -rf "$work" && mkdir -p "$work" && cd "$work"
"$program" >fresh.out 2>fresh.err
cp study.csv fresh.csv
"$program" --resume >resumed.out 2>resumed.err
grep -qx "resuming from study.ckpt: 6 run(s) finished" resumed.out ||
  { echo "readme_study: the second run did not resume from the finished study" >&2; cat resumed.out >&2; exit 1; }
[[ ! -s resumed.err ]] || { echo "readme_study: the resumed study ran again:" >&2; cat resumed.err >&2; exit 1; }
[[ $(grep -c '^run ' fresh.out) -eq 6 ]] || { echo "readme_study: expected the results of 6 runs" >&2; exit 1; }
diff <(grep '^run ' fresh.out) <(grep '^run ' resumed.out)
cmp fresh.csv study.csv
echo "readme_study: 6 runs ($(wc -l <study.csv) CSV lines), resumed from the checkpoint to the same results"
