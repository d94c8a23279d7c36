#!/usr/bin/env bash
# An MPI example prints the same results table on 1 rank and on R ranks (its models are the same
# bits): the lines from the table's header to the sandwich verdict must be identical.
#   mpi_same_table.sh RANKS MPIEXEC NUMPROC_FLAG PROGRAM [ARGS...] -- [PREFLAGS...]
set -euo pipefail
ranks=$1 mpiexec=$2 numproc_flag=$3 program=$4
shift 4
args=()
while [[ $# -gt 0 && $1 != -- ]]; do args+=("$1"); shift; done
[[ $# -gt 0 ]] && shift
preflags=("$@")
table() { sed -n '/^scheme .*mean/,/^local-sgd-I <=/p'; }
one=$(timeout 120 "$mpiexec" "$numproc_flag" 1 "${preflags[@]}" "$program" "${args[@]}" | table)
many=$(timeout 120 "$mpiexec" "$numproc_flag" "$ranks" "${preflags[@]}" "$program" "${args[@]}" | table)
echo "$many"
if [[ -z $one ]]; then echo "mpi_same_table: no table printed" >&2; exit 1; fi
if [[ $one != "$many" ]]; then
  echo "mpi_same_table: the table on $ranks ranks differs from the one on 1 rank:" >&2
  diff <(echo "$one") <(echo "$many") >&2
  exit 1
fi
echo "mpi_same_table: the same table on 1 and $ranks ranks"
