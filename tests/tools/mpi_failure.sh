#!/usr/bin/env bash
# A rank that throws ends the MPI job: non-zero exit, the rank's message on stderr, within 30 s.
#   mpi_failure.sh MPIEXEC [mpiexec arguments... program]
set -uo pipefail
start=$(date +%s)
output=$(timeout 60 "$@" 2>&1)
status=$?
elapsed=$(( $(date +%s) - start ))
echo "$output" | tail -5
if [[ $status -eq 0 ]]; then echo "mpi_failure: the job exited 0 although rank 2 failed" >&2; exit 1; fi
if [[ $status -eq 124 ]]; then echo "mpi_failure: the job hung (killed after 60 s)" >&2; exit 1; fi
if [[ $elapsed -gt 30 ]]; then echo "mpi_failure: the job took $elapsed s to end" >&2; exit 1; fi
if ! grep -q "hsgd rank 2 of 4: non-finite model at step 1, worker 5, level 0" <<<"$output"; then
  echo "mpi_failure: rank 2's message is missing" >&2; exit 1
fi
echo "mpi_failure: the job ended in $elapsed s with status $status and rank 2's message"
