"""What the plot scripts share: a backend that needs no display, one style per scheme, a probe CSV
read into curves averaged over seeds, the two panels of the sandwich and fashion plots, and saving.
Needs only Debian's python3-matplotlib.
"""

import csv
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

STYLE = {
    "local-sgd-I": dict(color="tab:green", linestyle="--"),
    "hsgd-random": dict(color="tab:blue", linewidth=2.2),
    "local-sgd-G": dict(color="tab:red", linestyle="--"),
    "hsgd-group-iid": dict(color="tab:purple", linestyle=":"),
    "hsgd-group-noniid": dict(color="tab:orange", linestyle="-."),
}


def read(path, columns):
    """{column: {scheme: {step: [values over seeds]}}}, skipping the cells a row did not measure;
    the schemes in the order the file first names them."""
    series = {name: defaultdict(lambda: defaultdict(list)) for name in columns}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            for name in columns:
                if row[name] != "":
                    series[name][row["scheme"]][int(row["step"])].append(float(row[name]))
    return series


def mean_curve(by_step):
    """The steps in increasing order and the mean over seeds at each."""
    steps = sorted(by_step)
    return steps, [sum(by_step[s]) / len(by_step[s]) for s in steps]


def means_and_divergences(source, column, order, schemes, legend_columns):
    """A figure of two panels. Above: `column` of the CSV file `source`, one curve per scheme (those of
    `order` first, in that order), its mean over seeds. Below: D_up (solid) and D_down (dotted) at
    the global average for those of `schemes` that the file holds. Returns the figure and the upper
    panel, to be labelled."""
    series = read(source, (column, "d_up", "d_down"))
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7.5), sharex=True, height_ratios=[3, 2])
    present = series[column]
    for scheme in [s for s in order if s in present] + sorted(set(present) - set(order)):
        steps, values = mean_curve(present[scheme])
        top.plot(steps, values, label=scheme, **STYLE.get(scheme, {}))
    for scheme in (s for s in schemes if s in series["d_up"]):
        color = STYLE.get(scheme, {}).get("color")
        steps, up = mean_curve(series["d_up"][scheme])
        _, down = mean_curve(series["d_down"][scheme])
        bottom.plot(steps, up, color=color, linestyle="-", label=f"{scheme}: D_up")
        bottom.plot(steps, down, color=color, linestyle=":", label=f"{scheme}: D_down")
    bottom.set_yscale("log")
    bottom.set_xlabel("local step t")
    bottom.set_ylabel("divergence at $\\bar x_t$")
    bottom.legend(fontsize="small", ncol=legend_columns)
    bottom.grid(True, which="both", alpha=0.3)
    return figure, top


def save(figure, axes, target, title, ylabel, legend="best", grid="both"):
    """Titles and labels `axes` (its legend at `legend`, a grid of the `grid` ticks), then writes the
    figure to `target`."""
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.legend(loc=legend)
    axes.grid(True, which=grid, alpha=0.3)
    figure.tight_layout()
    figure.savefig(target, dpi=110)
    print(f"wrote {target}")
