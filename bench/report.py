"""bench/results/latest.md and latest.png from the results run.py collected."""

from __future__ import annotations

from pathlib import Path
from typing import Any

LABELS = {
    "mmpkg": "mmpkg build",
    "nfpm": "nfpm, from the tarball (tar -x included)",
    "nfpm-tree": "nfpm, from an unpacked tree",
    "floor": "floor: gunzip (ISA-L) once, zstd -3 -T0 per package",
}


def _spread(s: dict[str, float], key: str, scale: float = 1.0, digits: int = 2) -> str:
    median, low, high = (s[key + suffix] / scale for suffix in ("", "_min", "_max"))
    return f"{median:.{digits}f} ({low:.{digits}f} to {high:.{digits}f})"


def markdown(results: dict[str, Any]) -> str:
    runs = results["runs"]
    lines = [
        f"Medians of {runs} runs (min to max), {results['machine']['cpus']} CPUs; "
        "CPU is user + sys of the process tree, peak RSS that of its largest process.",
        "",
    ]
    for profile, b in results["builds"].items():
        lines += [
            f"**{profile}**: {b['unpacked_bytes'] / 1e6:.1f} MB unpacked in {b['files']} files, "
            f"{b['tarball_bytes'] / 1e6:.1f} MB tarball",
            "",
            "| deb + rpm, zstd | wall s | CPU s | peak RSS MiB |",
            "|---|---|---|---|",
        ]
        for name, s in b["contenders"].items():
            peak = _spread(s, "peak_kib", 1024, 0)
            lines.append(f"| {LABELS[name]} | {_spread(s, 'wall')} | {_spread(s, 'cpu')} | {peak} |")
        ratios = ", ".join(f"{k} {v:.2f}" for k, v in b["ratios"].items())
        lines += ["", f"Wall-time ratios: {ratios}.", ""]
    lines += ["| mmpkg repo add of one .deb into a repository holding | s |", "|---|---|"]
    for size, s in results["repo_add"].items():
        lines.append(f"| {size} packages | {s['median']:.2f} ({s['min']:.2f} to {s['max']:.2f}) |")
    lines += ["", "| dpkg -i of v2 over v1 (small sample, throw-away root) | s |", "|---|---|"]
    for label, s in results["upgrade"].items():
        lines.append(f"| {label} | {s['median']:.2f} ({s['min']:.2f} to {s['max']:.2f}) |")
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    builds = results["builds"]
    sizes = [b["unpacked_bytes"] / 1e6 for b in builds.values()]
    fig, (time_ax, mem_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for name, label in LABELS.items():
        walls = [b["contenders"][name]["wall"] for b in builds.values()]
        peaks = [b["contenders"][name]["peak_kib"] / 1024 for b in builds.values()]
        time_ax.plot(
            sizes, walls, marker="o", label=label.split(",")[0] if name != "nfpm-tree" else "nfpm (tree)"
        )
        mem_ax.plot(
            sizes, peaks, marker="o", label=label.split(",")[0] if name != "nfpm-tree" else "nfpm (tree)"
        )
    time_ax.set(xlabel="release, MB unpacked", ylabel="wall time, s (median)", title="deb + rpm build time")
    mem_ax.set(xlabel="release, MB unpacked", ylabel="peak RSS, MiB", title="peak memory")
    for ax in (time_ax, mem_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(target, dpi=100)
    plt.close(fig)
