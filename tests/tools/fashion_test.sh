#!/usr/bin/env bash
# Runs the fashion example in a test. Exits 77 (ctest: skipped) when Fashion-MNIST is not installed.
#
#   fashion_test.sh DATA_DIR WORK_DIR MIN_ACCURACY FASHION [flags...]
#       runs FASHION with the flags and checks that every scheme in its CSV ends with a test
#       accuracy of at least MIN_ACCURACY, and that the table lists every scheme of the CSV;
#   fashion_test.sh DATA_DIR WORK_DIR resume FASHION [flags...]
#       stops the example with SIGTERM and resumes it (signal_resume.sh).
set -euo pipefail
data=$1 work=$2 minimum=$3 example=$4
shift 4
if [[ ! -f $data/train-images-idx3-ubyte.gz || ! -f $data/t10k-labels-idx1-ubyte.gz ]]; then
  echo "fashion_test: no Fashion-MNIST in $data (bash .ci/install-deps --data installs it): skipped"
  exit 77
fi
if [[ $minimum == resume ]]; then
  exec bash "$(dirname "$0")/signal_resume.sh" "$example" "$work" TERM "$@" --data "$data"
fi
rm -rf "$work" && mkdir -p "$work"
"$example" "$@" --data "$data" --csv "$work/fashion.csv" | tee "$work/table.txt"
# The last measured test accuracy of each scheme (the CSV's columns found by name).
awk -F, -v minimum="$minimum" -v schemes="$work/schemes.txt" '
  NR == 1 { for (k = 1; k <= NF; ++k) column[$k] = k; next }
  $column["test_accuracy"] != "" { last[$column["scheme"]] = $column["test_accuracy"] }
  END {
    if (length(last) == 0) { print "fashion_test: no test accuracy in the CSV"; exit 1 }
    for (scheme in last) {
      printf "fashion_test: %s ends at test accuracy %s (at least %s required)\n", scheme, last[scheme], minimum
      if (last[scheme] + 0 < minimum + 0) failed = 1
      print scheme > schemes
    }
    exit failed
  }' "$work/fashion.csv"
while read -r scheme; do
  grep -q "^$scheme " "$work/table.txt" || { echo "fashion_test: the table has no row for $scheme" >&2; exit 1; }
done <"$work/schemes.txt"
