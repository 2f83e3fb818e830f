"""The run's report table (report.md, report.txt, printed) and timeline plot (timeline.png: each node's height over
time, the faults as shaded spans)."""

from __future__ import annotations

from pathlib import Path

from node.chaos.history import History
from node.chaos.invariants import Verdict


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f}"


def render(title: str, seed: int, status: str, verdict: Verdict | None, failed_activities: list[str]) -> str:
    """A plain-text table that is also valid Markdown."""
    lines = [f"# {title}", "", f"seed {seed} · Chaos Toolkit status: {status}", ""]
    if verdict is None:
        lines.append("Invariants were not checked (the run did not reach its after-method hypothesis).")
    else:
        c = verdict.counts
        lines += [
            "| submitted | acknowledged | lost | voided by wipe | duplicated | refused | failed | indeterminate "
            "| forks | faults |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {c['submitted']} | {c['acknowledged']} | {c['lost']} | {c['voided_by_wipe']} | {c['duplicated']} | "
            f"{c['refused']} | {c['failed']} | {c['indeterminate']} | {c['forks']} | {c['faults']} |",
            "",
            "| fault | nodes | from (s) | healed (s) | first block after (s) | caught up after (s) |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for r in verdict.recoveries:
            lines.append(
                f"| {'+'.join(r.kinds)} | {','.join(r.nodes)} | {r.start:.1f} | {r.end:.1f} | "
                f"{_seconds(r.resumed_s)} | {_seconds(r.caught_up_s)} |"
            )
        lines += ["", "| invariant | held | detail |", "|---|---|---|"]
        for check in verdict.checks:
            lines.append(f"| {check.name} | {'yes' if check.ok else 'NO'} | {check.detail} |")
    if failed_activities:
        lines += ["", "Activities that failed (their fault was not injected or not healed as planned):"]
        lines += [f"- {a}" for a in failed_activities]
    return "\n".join(lines) + "\n"


def plot_timeline(history: History, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 4.5))
    by_node: dict[str, tuple[list[float], list[float]]] = {}
    for s in sorted(history.samples, key=lambda s: s.t):
        ts, hs = by_node.setdefault(s.node, ([], []))
        ts.append(s.t)
        hs.append(float("nan") if s.height is None else float(s.height))
    for node, (ts, hs) in sorted(by_node.items()):
        ax.plot(ts, hs, label=node, linewidth=1.2)
    colours = {"kill": "red", "pause": "orange", "wipe": "purple", "partition": "blue", "gate": "blue"}
    for f in history.faults:
        end = f.end if f.end is not None else history.ended_at
        colour = colours.get(f.kind, "grey")
        if end - f.start < 0.2:
            ax.axvline(f.start, color=colour, linestyle=":", linewidth=1)
        else:
            ax.axvspan(f.start, end, color=colour, alpha=0.12)
        ax.annotate(
            f"{f.kind} {','.join(f.nodes)}",
            (f.start, 1.0),
            xycoords=("data", "axes fraction"),
            rotation=90,
            fontsize=7,
            va="top",
            ha="right",
            color=colour,
        )
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("final height")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(out_dir: Path, text: str, history: History | None, title: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.md").write_text(text)
    (out_dir / "report.txt").write_text(text)
    if history is not None:
        plot_timeline(history, out_dir / "timeline.png", title)
