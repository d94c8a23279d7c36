#!/usr/bin/env python3
"""Plot the CSV written by `time_to_target`: held-out loss against simulated seconds.

Usage: python3 examples/plot_time.py time_to_target.csv time_to_target.png [target]

One curve per scheme (the test_loss and sim_seconds columns), the target as a dashed line
(0.7 unless given). Needs only Debian's python3-matplotlib.
"""

import sys

from plot_common import STYLE, mean_curve, plt, read, save


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    target = float(sys.argv[3]) if len(sys.argv) == 4 else 0.7
    series = read(sys.argv[1], ("test_loss", "sim_seconds"))
    figure, axes = plt.subplots(figsize=(8, 5))
    for scheme, losses in series["test_loss"].items():  # in step order: deadlines can set a clock back
        steps, values = mean_curve(losses)
        seconds = [series["sim_seconds"][scheme][step][0] for step in steps]
        axes.plot(seconds, values, label=scheme, **STYLE.get(scheme, {}))
    axes.axhline(target, color="gray", linestyle=":", label=f"target {target}")
    axes.set_xscale("log")
    axes.set_xlabel("simulated seconds (edge-cloud network)")
    save(figure, axes, sys.argv[2], "Time to target: fast local links, a slow global link",
         "held-out loss of the global average")


if __name__ == "__main__":
    main()
