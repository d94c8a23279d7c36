#!/usr/bin/env python3
"""Plot the CSV written by `time_to_target`: held-out loss against simulated seconds.

Usage: python3 examples/plot_time.py time_to_target.csv time_to_target.png [target]

One curve per scheme (the test_loss and sim_seconds columns), the target as a dashed line
(0.7 unless given). Needs only Debian's python3-matplotlib.
"""

import csv
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

STYLE = {
    "local-sgd-I": dict(color="tab:green", linestyle="--"),
    "hsgd-random": dict(color="tab:blue", linewidth=2.2),
    "local-sgd-G": dict(color="tab:red", linestyle="--"),
}


def read(path):
    """{scheme: ([simulated seconds], [held-out loss])} over the rows that measured the loss."""
    curves = defaultdict(lambda: ([], []))
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            if row["test_loss"] == "":
                continue
            seconds, losses = curves[row["scheme"]]
            seconds.append(float(row["sim_seconds"]))
            losses.append(float(row["test_loss"]))
    return curves


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    source, target_path = sys.argv[1], sys.argv[2]
    target = float(sys.argv[3]) if len(sys.argv) == 4 else 0.7
    curves = read(source)
    figure, axes = plt.subplots(figsize=(8, 5))
    for scheme, (seconds, losses) in curves.items():
        axes.plot(seconds, losses, label=scheme, **STYLE.get(scheme, {}))
    axes.axhline(target, color="gray", linestyle=":", label=f"target {target}")
    axes.set_xscale("log")
    axes.set_xlabel("simulated seconds (edge-cloud network)")
    axes.set_ylabel("held-out loss of the global average")
    axes.set_title("Time to target: fast local links, a slow global link")
    axes.legend()
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(target_path, dpi=110)
    print(f"wrote {target_path}")


if __name__ == "__main__":
    main()
