"""The comparison as a picture: per benchmark, each run's score with its 95% interval beside the
reported figures (one marker per source). matplotlib is optional and imported only here, with
its non-interactive Agg canvas (no display, no pyplot state)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from r1eval.claims.check import Row
from r1eval.errors import UsageError

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot_comparison", "require_matplotlib"]

_MARKERS = "DsovP^X*"


def require_matplotlib() -> None:
    """Fail with the fix when matplotlib is missing: called before anything is printed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError("--figure needs matplotlib, which r1eval installs only with its "
                         "figure extra: pip install 'r1eval[figure]' (from a clone: "
                         "pip install '.[figure]')") from None
_VERDICT_COLOURS = {"reproduced": "tab:green", "below": "tab:red", "above": "tab:blue",
                    "inconclusive": "tab:orange"}
_VERDICT_LABELS = {"reproduced": "reproduced", "below": "below (run scored lower)",
                   "above": "above (run scored higher)", "inconclusive": "inconclusive"}


def plot_comparison(rows: Sequence[Row], path: Path) -> int:
    """Write the figure of ``rows`` (those with a measured percentage) to ``path`` (PNG);
    returns the number of panels. Raises ``UsageError`` when there is nothing to draw or
    matplotlib is missing."""
    require_matplotlib()
    from matplotlib.figure import Figure

    panels = _panels(rows)
    if not panels:
        raise UsageError("no measured score to draw (no run task matches a reported figure)")
    ratios = [len(lines) + 1.2 for lines in panels.values()]
    figure = Figure(figsize=(8.0, 1.2 + 0.55 * sum(ratios)), layout="constrained")
    axes = figure.subplots(len(panels), 1, squeeze=False, height_ratios=ratios)[:, 0]
    sources = sorted({r.source for lines in panels.values() for rs in lines.values()
                      for r in rs if r.source})
    for ax, (title, lines) in zip(axes, panels.items(), strict=True):
        _draw_panel(ax, title, lines, sources)
    figure.legend(handles=_legend(sources), loc="outside upper center", ncol=3, fontsize=8,
                  frameon=False)
    figure.savefig(path, dpi=120)
    return len(panels)


def _panels(rows: Sequence[Row]) -> dict[str, dict[str, list[Row]]]:
    """benchmark (metric) -> run label -> its rows, for rows with a measured percentage and a
    reported one."""
    panels: dict[str, dict[str, list[Row]]] = {}
    for row in rows:
        if row.measured_pct is None or row.reported is None:
            continue
        title = f"{row.benchmark} ({row.metric})"
        label = f"{row.compared_as or row.model}\n{row.run}"
        panels.setdefault(title, {}).setdefault(label, []).append(row)
    return panels


def _draw_panel(ax: Axes, title: str, lines: dict[str, list[Row]], sources: list[str]) -> None:
    for y, rows in enumerate(lines.values()):
        first = rows[0]
        measured = first.measured_pct or 0.0
        low, high = first.ci_low_pct or measured, first.ci_high_pct or measured
        ax.errorbar([measured], [y], xerr=[[measured - low], [high - measured]], fmt="o",
                    color="black", capsize=4)
        if first.same_low_pct is not None and first.same_high_pct is not None:
            ax.errorbar([measured], [y], fmt="none", color=_SAME_QUESTIONS, elinewidth=4,
                        xerr=[[measured - first.same_low_pct], [first.same_high_pct - measured]])
        for row in rows:
            if row.reported is None or row.source is None:
                continue
            ax.scatter([row.reported], [y], marker=_marker(sources, row.source), s=70,
                       zorder=3, color=_VERDICT_COLOURS.get(row.verdict, "grey"),
                       edgecolors="black")
    ax.set_yticks(range(len(lines)), list(lines), fontsize=8)
    ax.set_ylim(len(lines) - 0.4, -0.6)
    ax.set_title(title, fontsize=10, loc="left")
    ax.set_xlabel("score (%)", fontsize=8)
    ax.grid(axis="x", alpha=0.3)


_SAME_QUESTIONS = "tab:gray"


def _marker(sources: list[str], source: str) -> str:
    return _MARKERS[sources.index(source) % len(_MARKERS)]


def _legend(sources: list[str]) -> list[Any]:
    """Shapes for sources, colours for verdicts, and the measured point with its interval."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list[Any] = [Line2D([], [], color="black", marker="o",
                                 label="measured, 95% interval over questions"),
                          Line2D([], [], color=_SAME_QUESTIONS, linewidth=4,
                                 label="95% interval on the same questions")]
    handles += [Line2D([], [], linestyle="", marker=_marker(sources, s), color="lightgrey",
                       markeredgecolor="black", label=f"reported: {s}") for s in sources]
    handles += [Patch(color=colour, label=_VERDICT_LABELS[verdict]) for verdict, colour in
                _VERDICT_COLOURS.items()]
    return handles
