"""One benchmark table: rows, the machine they ran on, and the three ways to show them.

A row compares bertforge with one peer on one job. `ratio` > 1 always means bertforge is
better (faster, or less memory, or lower latency); `limit` is the physical limit for the job
where one applies (tokens/s at the measured GEMM peak, or the tokenizer alone for data
building) and `of_limit` the share of it bertforge reaches.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import socket
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

README_START = "<!-- bench-table:start -->"
README_END = "<!-- bench-table:end -->"


@dataclass
class Row:
    name: str
    unit: str
    bertforge: float
    peer: float | None
    peer_name: str
    higher_is_better: bool = True
    limit: float | None = None
    target: float | None = None  # the ratio the project aims for, where it set one
    of_limit_target: float | None = None  # the share of the limit it aims for

    @property
    def ratio(self) -> float | None:
        if self.peer is None or not self.peer or not self.bertforge:
            return None
        return self.bertforge / self.peer if self.higher_is_better else self.peer / self.bertforge

    @property
    def of_limit(self) -> float | None:
        return self.bertforge / self.limit if self.limit else None

    def record(self) -> dict:
        return {**asdict(self), "ratio": self.ratio, "of_limit": self.of_limit}


def machine() -> dict:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")),
        platform.processor(),
    )
    return {
        "host": socket.gethostname(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def versions() -> dict:
    import tokenizers
    import transformers

    import bertforge

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "bertforge": getattr(bertforge, "__version__", "dev"),
    }


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}"


def markdown(rows: list[Row]) -> str:
    lines = [
        "| job | unit | bertforge | peer | peer | ratio | target | share of limit |",
        "|---|---|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}x"
        target = "-" if r.target is None else f">= {r.target:g}x"
        share = "-" if r.of_limit is None else f"{r.of_limit:.0%}"
        if r.of_limit_target is not None:
            share += f" (>= {r.of_limit_target:.0%})"
        lines.append(
            f"| {r.name} | {r.unit} | {_num(r.bertforge)} | {_num(r.peer)} | {r.peer_name} "
            f"| {ratio} | {target} | {share} |"
        )
    return "\n".join(lines)


def plot(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in rows if r.ratio is not None]
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(shown) + 1.2))
    names = [r.name for r in shown][::-1]
    ratios = [r.ratio for r in shown][::-1]
    colors = ["tab:green" if x >= 1 else "tab:red" for x in ratios]
    ax.barh(names, ratios, color=colors)
    ax.axvline(1.0, color="black", linewidth=0.8)
    for i, r in enumerate(shown[::-1]):
        if r.target is not None:
            ax.plot([r.target, r.target], [i - 0.4, i + 0.4], color="black", linewidth=1.5)
    ax.set_xlabel("bertforge / peer (> 1: bertforge better; bars: targets)")
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write(
    rows: list[Row], out_dir: Path, readme: Path | None, title: str, root: Path, suffix: str = ""
) -> Path:
    """Write `<out_dir>/<date>-<host><suffix>.json` and `.png`; replace the table in `readme`
    (paths shown relative to `root`)."""
    info = machine()
    stamp = datetime.date.today().isoformat()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{stamp}-{info['host']}{suffix}.json"
    record = {"title": title, "date": stamp, "machine": info, "versions": versions()}
    record["rows"] = [r.record() for r in rows]
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, path)
    plot(rows, path.with_suffix(".png"))
    if readme is not None:
        shown = path.relative_to(root) if path.is_relative_to(root) else path
        _update_readme(readme, record, rows, shown)
    return path


def _update_readme(readme: Path, record: dict, rows: list[Row], path: Path) -> None:
    text = readme.read_text(encoding="utf-8")
    if README_START not in text or README_END not in text:
        raise SystemExit(f"{readme} has no {README_START} ... {README_END} block to replace")
    m, v = record["machine"], record["versions"]
    block = "\n".join(
        [
            README_START,
            f"{record['title']}, {record['date']}: {m['cpu']}, {m['cores']} cores, "
            f"{m['threads']} threads, {m['memory_gib']} GiB"
            + (f", {m['cuda']}" if m["cuda"] else "")
            + f"; torch {v['torch']}, transformers {v['transformers']}, "
            f"tokenizers {v['tokenizers']}. Raw figures: `{path.as_posix()}` "
            f"(chart: `{path.with_suffix('.png').name}`).",
            "",
            markdown(rows),
            README_END,
        ]
    )
    head, rest = text.split(README_START, 1)
    tail = rest.split(README_END, 1)[1]
    readme.write_text(head + block + tail, encoding="utf-8")
