#!/usr/bin/env bash
# An example stopped by a real signal resumes to the same final CSV and checkpoint (hence the same
# models) as the example run without a stop.
#
#   signal_resume.sh EXAMPLE WORK_DIR SIGNAL [example flags...]
#
# SIGNAL TERM: the example must stop at the next step with a checkpoint written, exit 143, and
# resume from that checkpoint. SIGNAL KILL: nothing is written at the kill; the example resumes
# from its last periodic checkpoint, dropping the CSV rows (and half row) written after it.
set -euo pipefail
example=$1 work=$2 signal=$3
shift 3
flags=("$@")
rm -rf "$work" && mkdir -p "$work" && cd "$work"

"$example" "${flags[@]}" --csv reference.csv --checkpoint reference.ckpt >reference.out

"$example" "${flags[@]}" --csv run.csv --checkpoint run.ckpt --checkpoint-every 8 >stopped.out 2>stopped.err &
pid=$!
for _ in $(seq 600); do  # up to 60 s for the first periodic checkpoint
  [[ -e run.ckpt ]] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
[[ -e run.ckpt ]] || { echo "signal_resume: no checkpoint appeared" >&2; kill -KILL "$pid" 2>/dev/null; exit 1; }
kill -"$signal" "$pid"
status=0
wait "$pid" || status=$?
expected=$((128 + $(kill -l "$signal")))
if [[ $status -ne $expected ]]; then
  echo "signal_resume: the stopped example exited with $status, expected $expected" >&2
  cat stopped.err >&2
  exit 1
fi
if [[ $signal == TERM ]] && ! grep -q "checkpoint written to run.ckpt" stopped.err; then
  echo "signal_resume: the example did not report its checkpoint" >&2
  exit 1
fi
[[ $signal == TERM ]] && ls run.ckpt.tmp.* >/dev/null 2>&1 && { echo "signal_resume: a temporary checkpoint file was left behind" >&2; exit 1; }

"$example" "${flags[@]}" --csv run.csv --checkpoint run.ckpt --checkpoint-every 8 --resume run.ckpt >resumed.out
grep -q "resuming from run.ckpt" resumed.out || { echo "signal_resume: the example did not resume" >&2; exit 1; }
cmp reference.csv run.csv
cmp reference.ckpt run.ckpt
# A resume with other flags is refused (it would mix two studies), and leaves the files alone.
if "$example" "${flags[@]}" --lr 0.0123 --csv run.csv --resume run.ckpt >other.out 2>other.err; then
  echo "signal_resume: a resume with another --lr was accepted" >&2
  exit 1
fi
grep -q "example flags" other.err || { echo "signal_resume: the refusal does not name the flags" >&2; cat other.err >&2; exit 1; }
cmp reference.csv run.csv
echo "signal_resume: SIG$signal, resumed to the same CSV ($(wc -c <run.csv) bytes) and final checkpoint"
