#!/usr/bin/env bash
# Checkpoints across process counts: each pair saves with one count (0: in process, no mpiexec)
# and resumes with another; the resume compares with the run that never stopped.
#   mpi_checkpoint.sh PROGRAM DIRECTORY MPIEXEC NUMPROC_FLAG [PREFLAGS...]
set -euo pipefail
program=$1 directory=$2 mpiexec=$3 numproc_flag=$4
shift 4
preflags=("$@")
mkdir -p "$directory"
launch() {  # launch RANKS ARGS...: in process for 0 ranks
  local ranks=$1
  shift
  if [[ $ranks -eq 0 ]]; then "$program" "$@"; else timeout 120 "$mpiexec" "$numproc_flag" "$ranks" "${preflags[@]}" "$program" "$@"; fi
}
for pair in "0 4" "3 0" "3 2" "8 3" "2 8" "4 4"; do
  read -r saved resumed <<<"$pair"
  file=$directory/run-$saved-$resumed.ckpt
  rm -f "$file"
  echo "saved with $saved ranks (0: in process), resumed with $resumed:"
  launch "$saved" save "$file"
  launch "$resumed" resume "$file"
done
# The file itself is the same bits whoever wrote it: every server's last average included, which
# rank 0 collects from a rank that took part in the server's last round.
launch 0 save "$directory/in-process.ckpt"
for ranks in 3 8; do
  launch "$ranks" save "$directory/ranks-$ranks.ckpt"
  cmp "$directory/in-process.ckpt" "$directory/ranks-$ranks.ckpt"
  echo "the checkpoint saved on $ranks ranks is the same bytes as the one saved in process"
done
# A SIGTERM that reaches only the last rank stops every rank at the same step, after a save that
# resumes in process to the same bits.
for ranks in 3 4; do
  launch "$ranks" signal "$directory/signal-$ranks.ckpt"
  launch 0 resume "$directory/signal-$ranks.ckpt"
done
