#!/usr/bin/env python3
"""Plot the CSV written by `fashion`: test accuracy against steps, one curve per scheme.

Usage: python3 examples/plot_fashion.py fashion.csv fashion.png

Top panel: test accuracy of the global average on the held-out images (mean over seeds).
Bottom panel: the upward and downward divergences D_up and D_down at the global average for the
two H-SGD schemes. Needs only Debian's python3-matplotlib.
"""

import csv
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

SCHEME_ORDER = ["local-sgd-I", "hsgd-random", "hsgd-group-noniid", "local-sgd-G"]
STYLE = {
    "local-sgd-I": dict(color="tab:green", linestyle="--"),
    "hsgd-random": dict(color="tab:blue", linewidth=2.2),
    "hsgd-group-noniid": dict(color="tab:orange", linestyle="-."),
    "local-sgd-G": dict(color="tab:red", linestyle="--"),
}
COLUMNS = ("test_accuracy", "d_up", "d_down")


def read(path):
    """{column: {scheme: {step: [values over seeds]}}}, skipping the cells a row did not measure."""
    series = {name: defaultdict(lambda: defaultdict(list)) for name in COLUMNS}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            for name in COLUMNS:
                if row[name] != "":
                    series[name][row["scheme"]][int(row["step"])].append(float(row[name]))
    return series


def mean_curve(by_step):
    steps = sorted(by_step)
    return steps, [sum(by_step[s]) / len(by_step[s]) for s in steps]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    source, target = sys.argv[1], sys.argv[2]
    series = read(source)
    accuracy = series["test_accuracy"]
    schemes = [s for s in SCHEME_ORDER if s in accuracy] + sorted(set(accuracy) - set(SCHEME_ORDER))

    figure, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7.5), sharex=True, height_ratios=[3, 2])
    for scheme in schemes:
        steps, values = mean_curve(accuracy[scheme])
        top.plot(steps, values, label=scheme, **STYLE.get(scheme, {}))
    top.set_ylabel("test accuracy of the global average")
    top.set_title("Fashion-MNIST, two-class label shards")
    top.legend(loc="lower right")
    top.grid(True, alpha=0.3)

    for scheme in ("hsgd-random", "hsgd-group-noniid"):
        if scheme not in series["d_up"]:
            continue
        color = STYLE[scheme]["color"]
        steps, up = mean_curve(series["d_up"][scheme])
        _, down = mean_curve(series["d_down"][scheme])
        bottom.plot(steps, up, color=color, linestyle="-", label=f"{scheme}: D_up")
        bottom.plot(steps, down, color=color, linestyle=":", label=f"{scheme}: D_down")
    bottom.set_yscale("log")
    bottom.set_xlabel("local step t")
    bottom.set_ylabel("divergence at $\\bar x_t$")
    bottom.legend(fontsize="small", ncol=2)
    bottom.grid(True, which="both", alpha=0.3)

    figure.tight_layout()
    figure.savefig(target, dpi=110)
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
