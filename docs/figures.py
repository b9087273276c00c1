"""Draw the results page's figures from its own tables: ``python docs/figures.py``.

The numbers are read from docs/results.md (the tables `lamae compare` and `lamae leads` wrote,
pasted there with their commands), so a figure can never disagree with its table. Error bars
are 95% confidence intervals: for means over seeds, mean ± t(0.975, n-1) · std / sqrt(n); for
the reduced-lead table, the bootstrap intervals it reports.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DOCS = Path(__file__).resolve().parent
T_975 = {4: 2.776}  # Student's t, 97.5th percentile, by degrees of freedom (5 seeds)


def table_after(text: str, heading: str) -> list[list[str]]:
    """The first Markdown table after ``heading``: its rows as lists of cell strings."""
    start = text.index(heading)
    lines = text[start:].splitlines()
    rows = []
    for line in (lines if heading.startswith("|") else lines[1:]):
        if line.startswith("|"):
            if not set(line) <= set("|-: "):
                rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif rows:
            break
    return rows


def mean_std(cell: str) -> tuple[float, float]:
    m, s = re.search(r"([\d.]+) ± ([\d.]+)", cell).groups()  # bold cells too
    return float(m), float(s)


def ci(std: float, n: int = 5) -> float:
    return T_975[n - 1] * std / n ** 0.5


def finish(fig, ax, xlabel: str, title: str, out: Path) -> None:
    """Label a line chart of macro AUROC, add its legend, save it and close it."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel("macro AUROC")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def bars(ax, names: list[str], stats: list[tuple[float, float]], colours: list[str]) -> None:
    """Mean macro AUROC per model with the 95% CI of the mean over 5 seeds."""
    ax.bar(names, [m for m, _ in stats], yerr=[ci(s) for _, s in stats], color=colours, capsize=3)
    ax.set_ylabel("macro AUROC")
    ax.tick_params(axis="x", rotation=35)


def efficiency_lines(ax, rows: list[list[str]], models, colour: dict | None = None) -> None:
    """A label-efficiency table's rows for ``models``, one line each over the label fractions."""
    fractions = [float(c.rstrip("%")) for c in rows[0][1:]]
    for row in rows[1:]:
        if row[0] not in models:
            continue
        stats = [mean_std(c) for c in row[1:]]
        ax.errorbar(fractions, [m for m, _ in stats], yerr=[ci(s) for _, s in stats], marker="o", capsize=3,
                    label=row[0], lw=2.5 if row[0] == "LAMAE" else 1.2, color=(colour or {}).get(row[0]))
    ax.set_xscale("log")
    ax.set_xticks(fractions, [f"{f:g}%" for f in fractions])
    ax.set_xlabel("training patients with labels")


def compare_bars(text: str, out: Path) -> None:
    rows = table_after(text, "### (b) Macro AUROC per label level")
    header, values = rows[0], next(r for r in rows if r[0] == "all")
    names = header[1:]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    bars(ax, names, [mean_std(v) for v in values[1:]],
         ["#c0392b" if n == "LAMAE" else "#7f8c8d" if n == "Random" else "#2980b9" for n in names])
    ax.set_ylim(0.5, 0.9)
    ax.set_title("PTB-XL-500 superdiagnostic, linear probe, 5 seeds (95% CI of the mean)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def label_efficiency(text: str, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.8))
    efficiency_lines(ax, table_after(text, "### (d) Label efficiency"),
                     ("LAMAE", "LAMAE-attn", "IndS", "Joint", "MVMAE", "Random"))
    finish(fig, ax, "training patients with labels", "Label efficiency (5 seeds, 95% CI of the mean)", out)


def reduced_leads(text: str, out: Path) -> None:
    rows = table_after(text, "| leads | which | LAMAE seed 0")
    header = rows[0]
    fig, ax = plt.subplots(figsize=(6, 3.8))
    x = [int(r[0]) for r in rows[1:]]
    for j, name in enumerate(header[2:], start=2):
        cells = [re.match(r"([\d.]+) \[([\d.]+), ([\d.]+)\]", r[j]).groups() for r in rows[1:]]
        m = [float(c[0]) for c in cells]
        lo = [float(c[0]) - float(c[1]) for c in cells]
        hi = [float(c[2]) - float(c[0]) for c in cells]
        ax.errorbar([v + (j - 3.5) * 0.08 for v in x], m, yerr=[lo, hi], marker="o", capsize=2, label=name,
                    color="#c0392b" if "LAMAE" in name else "#2980b9", alpha=1.0 if "seed 0" in name else 0.6)
    ax.set_xticks(x, [str(v) for v in x])
    finish(fig, ax, "leads given to the model", "Reduced lead sets, PTB-XL-500 (bootstrap 95% CI)", out)


def state_space(text: str, heading: str, out: Path) -> None:
    """A comparison section with the state-space members (from ``heading`` on): probe AUROC per
    model, label efficiency and reduced lead sets."""
    section = text[text.index(heading):]
    colour = {"LAMAE": "#c0392b", "LAMAE_E": "#e67e22", "CPC": "#2980b9", "S4-MAE": "#16a085",
              "IndS": "#8e44ad", "LAMAE-attn": "#d35400", "Joint": "#34495e", "random encoder": "#7f8c8d"}
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    rows = table_after(section, heading)
    names = rows[0][1:]
    bars(axes[0], names, [mean_std(c) for c in rows[1][1:]], [colour[n] for n in names])
    axes[0].set_ylim(0.55, 0.87)
    axes[0].set_title("all labels, 12 leads")
    efficiency_lines(axes[1], table_after(section, "Label efficiency (five seeds"),
                     ("LAMAE", "CPC", "S4-MAE", "IndS", "Joint"), colour)
    axes[1].set_title("label efficiency")
    axes[1].legend(fontsize=8)
    rows = table_after(section, "| leads | which | LAMAE | CPC | S4-MAE | Joint |")
    x = [int(r[0]) for r in rows[1:]]
    for j, name in enumerate(rows[0][2:], start=2):
        st = [mean_std(r[j]) for r in rows[1:]]
        axes[2].errorbar([v * (1 + (j - 3.5) * 0.03) for v in x], [m for m, _ in st], yerr=[ci(sd) for _, sd in st],
                         marker="o", capsize=2, label=name, color=colour[name], lw=2.5 if name == "LAMAE" else 1.2)
    axes[2].set_xscale("log")
    axes[2].set_xticks(x, [str(v) for v in x])
    axes[2].set_xlabel("leads given to the model")
    axes[2].set_title("reduced lead sets")
    axes[2].legend(fontsize=8)
    fig.suptitle("PTB-XL-500 superdiagnostic, linear probes, 5 seeds (95% CI of the mean)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    text = (DOCS / "results.md").read_text()
    img = DOCS / "img"
    img.mkdir(exist_ok=True)
    compare_bars(text, img / "compare.png")
    label_efficiency(text, img / "label_efficiency.png")
    reduced_leads(text, img / "reduced_leads.png")
    state_space(text, "## The state-space members against LAMAE", img / "state_space.png")
    state_space(text, "## Today's LAMAE against the state-space members", img / "state_space_today.png")
    print(f"wrote {', '.join(p.name for p in sorted(img.glob('*.png')))} in {img}")


if __name__ == "__main__":
    main()
