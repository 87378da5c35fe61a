"""Run every benchmark and write one Markdown report.

Each ``bench/bench_*.py`` runs on its own and prints a Markdown section (a ``## Title`` and its
table) on stdout. This runner calls them one after another (never in parallel: they measure the
machine), then prints the combined report and, with ``--update-docs``, writes it to
``docs/benchmarks.md`` with the date and the machine it ran on.

    python bench/run_all.py                 # full run (the dashboard soak is 60 s; capture 60 s)
    python bench/run_all.py --quick         # shorter runs, same tables
    python bench/run_all.py --update-docs   # also rewrite docs/benchmarks.md
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHES = [
    # (script, full-run args, quick-run args)
    ("bench_training.py", [], ["--quick"]),
    ("bench_training_variants.py", [], ["--epochs", "4"]),
    ("bench_capture.py", [], ["--seconds", "10"]),
    ("bench_ble.py", ["--seconds", "5"], ["--seconds", "2"]),
    ("bench_ble_firmware.py", ["--seconds", "8"], ["--seconds", "3"]),
    ("bench_parity.py", [], ["--takes", "20"]),
    ("bench_m4.py", [], ["--epochs", "3", "--stream", "5"]),
    ("bench_calibrate.py", [], ["--epochs", "4"]),
    ("bench_dashboard.py", [], ["--seconds", "20"]),
]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPU cores ({cpu}), Python {platform.python_version()}, {platform.system()} {platform.release()}"


# Sections of docs/benchmarks.md no script here can regenerate (builds against the real board
# core, which is fetched and built outside the repository): kept as they are by --update-docs.
KEPT = ("## Real-core builds",)


def kept_sections(doc: Path) -> str:
    if not doc.is_file():
        return ""
    text, kept = doc.read_text(), []
    for title in KEPT:
        start = text.find("\n" + title)
        if start >= 0:
            end = text.find("\n## ", start + 1)
            kept.append(text[start + 1:end if end >= 0 else len(text)].rstrip() + "\n")
    return "\n" + "\n".join(kept) if kept else ""


# Said on top of every run: what the figures are measured on (bench/common.py)
REAL_DATA_NOTE = (
    "Every benchmark measures on **real recordings**, never on the simulated hand: \"magic_wand\" below is\n"
    "TensorFlow's archive of 10 people's recordings, read in place from `../shared/datasets/magic_wand`\n"
    "(or fetched with `gesture data fetch magic_wand`) and imported once by `bench/common.py` (it used to\n"
    "be bundled in the repository; the recordings and TensorFlow's person split are the same).\n"
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="shorter runs (for a smoke check)")
    ap.add_argument("--update-docs", action="store_true", help="write the report to docs/benchmarks.md")
    ap.add_argument("--only", nargs="*", help="run only these benchmark scripts")
    args = ap.parse_args()

    sections, failed = [], []
    for script, full, quick in BENCHES:
        if args.only and script not in args.only:
            continue
        path = ROOT / "bench" / script
        cmd = [sys.executable, str(path), *(quick if args.quick else full)]
        print(f"running {' '.join(cmd[1:])} ...", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        took = time.monotonic() - t0
        if proc.returncode != 0:
            failed.append(script)
            sections.append(f"## {script}\n\nFAILED (exit {proc.returncode}) after {took:.0f} s.\n")
        else:
            sections.append(proc.stdout.strip() + f"\n\n_{script}: {took:.0f} s_\n")
        print(sections[-1], flush=True)

    header = (
        "# Benchmarks\n\n"
        f"Latest run: {dt.date.today().isoformat()} on {machine()}.\n"
        f"Command: `python bench/run_all.py{' --quick' if args.quick else ''}` (each `bench/bench_*.py` also runs alone).\n\n"
        + REAL_DATA_NOTE
    )
    out = ROOT / "docs" / "benchmarks.md"
    report = header + "\n" + "\n".join(sections) + kept_sections(out)
    if args.update_docs:
        tmp = out.with_suffix(".md.tmp")
        tmp.write_text(report)
        tmp.replace(out)
        print(f"wrote {out}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
