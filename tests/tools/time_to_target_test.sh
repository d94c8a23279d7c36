#!/usr/bin/env bash
# Runs time_to_target and checks, from its CSV alone, that every scheme reached the target held-out
# loss and that H-SGD with random groups reached it first on the simulated clock.
#
#   time_to_target_test.sh EXAMPLE WORK_DIR TARGET [flags...]
set -euo pipefail
example=$1 work=$2 target=$3
shift 3
rm -rf "$work" && mkdir -p "$work"
"$example" "$@" --target "$target" --csv "$work/time.csv" | tee "$work/table.txt"
awk -F, -v target="$target" '
  NR == 1 { for (k = 1; k <= NF; ++k) column[$k] = k; next }
  # a number (not empty, not nan) at or below the target
  $column["test_loss"] ~ /^[-+]?[0-9.]+([eE][-+]?[0-9]+)?$/ && $column["test_loss"] + 0 <= target + 0 && !($column["scheme"] in reached) {
    reached[$column["scheme"]] = $column["sim_seconds"] + 0
  }
  END {
    split("local-sgd-I hsgd-random local-sgd-G", schemes, " ")
    for (k = 1; k <= 3; ++k) {
      if (!(schemes[k] in reached)) { printf "time_to_target_test: %s never reached %s\n", schemes[k], target; exit 1 }
      printf "time_to_target_test: %s reached %s at %.3f simulated seconds\n", schemes[k], target, reached[schemes[k]]
    }
    if (reached["hsgd-random"] >= reached["local-sgd-I"] || reached["hsgd-random"] >= reached["local-sgd-G"]) {
      print "time_to_target_test: H-SGD was not first"; exit 1
    }
  }' "$work/time.csv"
