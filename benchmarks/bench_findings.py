"""Throughput when findings are many: flagged share, text-heavy lines and file shape.

A script that prints numbers, not a test. Every case is the corpus of
``benchmarks/corpus_variants.py`` scored end to end in a fresh process (wall time, peak RSS,
the run's own stage times), beside the floor measured in the same run just before it: DuckDB
alone loading the same input into a database file, every cell as text. For the small files
the floor reads them all with one ``read_csv`` over the folder; for the XLSX workbook, which
DuckDB cannot read without an extension, the floor is the load of the same lines as CSV.

    python benchmarks/bench_findings.py --rows 1000000            # the matrix below, ~10 min
    python benchmarks/bench_findings.py --rows 200000 --cases f40 # one case, a quick look
    python benchmarks/bench_findings.py --plot docs/img/findings.svg --from results.json

Cases: f1, f10, f40 (one CSV, 1 %, 10 %, 40 % of lines flagged), f40t30 (40 % flagged and
30 % of lines text-heavy), files40 (the 40 % corpus as one small CSV per tender, --files-rows
lines) and xlsx40 (as one XLSX workbook, --xlsx-rows lines), and rules (``rescore
--rules-only`` on the f40 database). Results go to ``--work``/findings.json.

``--parts`` runs each case three ways, in turn with its floor: whole, without the models
(``--no-models``), and without the rules either (``--no-models`` and an empty folder in
place of each bundled rule folder, so that the lexicon and the reference book stay): the
third is what reading, enriching and storing the lines cost before any finding is made.

    python benchmarks/bench_findings.py --cases f40 --parts --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus_variants import make_variant

PY = sys.executable
ICCAUDIT = [PY, "-m", "iccaudit.cli"]

CASES = {  # name: (flagged share, text-heavy share, shape)
    "f1": (0.01, 0.0, "csv"),
    "f10": (0.10, 0.0, "csv"),
    "f40": (0.40, 0.0, "csv"),
    "f40t30": (0.40, 0.30, "csv"),
    "files40": (0.40, 0.0, "files"),
    "xlsx40": (0.40, 0.0, "xlsx"),
}


def measured(cmd: list[str]) -> tuple[float, float, float, str]:
    """Wall seconds, peak RSS (MB), CPU seconds (user + system, all its threads) and stdout
    of one child process. On a busy two-core box the run is CPU-bound: its CPU seconds say
    what the code costs, its wall what the box gave it."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        text = out.read()
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"failed: {' '.join(cmd)}\n{err.read()[-3000:]}")
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, text


def floor(source: str, work: Path) -> tuple[float, float]:
    """DuckDB's bare load of ``source`` (a path or a glob) into a database file: its
    seconds (timed inside the child, without the interpreter's start) and the child's CPU
    seconds."""
    db = work / "floor.duckdb"
    db.unlink(missing_ok=True)
    code = (
        "import duckdb,sys,time; t=time.perf_counter(); c=duckdb.connect(sys.argv[2]);"
        "c.execute('SET enable_progress_bar = false');"
        "c.execute(\"CREATE TABLE t AS SELECT * FROM read_csv(?, all_varchar=true, "
        "union_by_name=true)\", [sys.argv[1]]); c.close(); print(time.perf_counter()-t)"
    )
    _, _, cpu, out = measured([PY, "-c", code, source, str(db)])
    return float(out.strip().splitlines()[-1]), cpu


def flagged_share(db: Path) -> dict[str, float]:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        items, flagged, findings = con.execute(
            "SELECT (SELECT count(*) FROM line_items), count(DISTINCT item_id), count(*) "
            "FROM findings").fetchone() or (0, 0, 0)
    finally:
        con.close()
    return {"line_items": items, "flagged_lines": flagged, "findings": findings,
            "flagged_share": round(flagged / items, 3) if items else 0.0}


def case_input(name: str, args: argparse.Namespace) -> tuple[int, Path, str]:
    """Case ``name``'s lines, the path scored and what its floor loads (a CSV, or a glob of
    the small files; for the XLSX workbook, the same lines as CSV)."""
    flagged, heavy, shape = CASES[name]
    rows = {"files": args.files_rows, "xlsx": args.xlsx_rows}.get(shape, args.rows)
    path = make_variant(args.work, rows, flagged, heavy, shape)
    csv = path.parent / "tenders.csv" if shape == "xlsx" else path
    return rows, path, str(path / "*.csv") if shape == "files" else str(csv)


#: ``--parts``: the run's variants (extra ``score`` arguments; "lines" gets the empty pack).
PARTS = {"whole": [], "no_models": ["--no-models"], "lines": ["--no-models"]}


def empty_pack(work: Path) -> list[str]:
    """``--rules`` arguments that replace every bundled rule folder with an empty one (the
    lexicon and the reference book are not rule folders and stay)."""
    bundled = Path(__file__).resolve().parents[1] / "rules"
    args = []
    for folder in sorted(p for p in bundled.iterdir() if p.is_dir()):
        if folder.name in ("lexicon", "reference") or not any(folder.glob("*.yaml")):
            continue
        empty = work / "empty-pack" / folder.name
        empty.mkdir(parents=True, exist_ok=True)
        args += ["--rules", str(empty)]
    return args


def run_parts(name: str, args: argparse.Namespace) -> dict:
    """Case ``name`` whole, without the models, and without rules or models, each beside a
    floor measured just before it; the median of ``--repeat`` runs of each."""
    rows, path, source = case_input(name, args)
    extra = {k: v + (empty_pack(args.work) if k == "lines" else []) for k, v in PARTS.items()}
    runs: dict[str, list[dict]] = {k: [] for k in PARTS}
    for _ in range(args.repeat):
        for part, more in extra.items():
            floor_s, floor_cpu = floor(source, args.work)
            db = args.work / f"{name}-{part}.duckdb"
            db.unlink(missing_ok=True)
            wall, rss, cpu, out = measured([*ICCAUDIT, "score", str(path), "--db", str(db),
                                            "-q", "--format", "json", *more])
            runs[part].append({"floor_s": round(floor_s, 2), "wall_s": round(wall, 2),
                               "x_floor": round(wall / floor_s, 2), "cpu_s": round(cpu, 2),
                               "floor_cpu_s": round(floor_cpu, 2), "peak_rss_mb": round(rss),
                               "findings": json.loads(out).get("findings")})
    parts = {}
    for part, rs in runs.items():
        mid = sorted(rs, key=lambda r: r["x_floor"])[(len(rs) - 1) // 2]
        parts[part] = {"x_floor": mid["x_floor"], "wall_s": mid["wall_s"],
                       "cpu_s": mid["cpu_s"], "floor_cpu_s": mid["floor_cpu_s"],
                       "peak_rss_mb": max(r["peak_rss_mb"] for r in rs), "runs": rs}
    return {"case": f"{name}-parts", "rows": rows, "parts": parts}


def run_case(name: str, args: argparse.Namespace) -> dict:
    flagged, heavy, shape = CASES[name]
    rows, path, source = case_input(name, args)
    db = args.work / f"{name}.duckdb"
    result: dict = {"case": name, "rows": rows, "flagged_target": flagged, "text_heavy": heavy,
                    "shape": shape, "runs": []}
    for _ in range(args.repeat):  # floor and run alternate: the machine is shared
        floor_s, floor_cpu = floor(source, args.work)
        db.unlink(missing_ok=True)
        wall, rss, cpu, out = measured([*ICCAUDIT, "score", str(path), "--db", str(db), "-q",
                                        "--format", "json"])
        stages = json.loads(out).get("timings_s", {})
        result["runs"].append({"floor_s": round(floor_s, 2), "wall_s": round(wall, 2),
                               "peak_rss_mb": round(rss), "x_floor": round(wall / floor_s, 2),
                               "cpu_s": round(cpu, 2), "floor_cpu_s": round(floor_cpu, 2),
                               "stages_s": stages})
    best = sorted(result["runs"], key=lambda r: r["wall_s"])[(len(result["runs"]) - 1) // 2]
    result |= {k: best[k] for k in ("floor_s", "wall_s", "x_floor", "cpu_s", "floor_cpu_s",
                                    "stages_s")}
    result["peak_rss_mb"] = max(r["peak_rss_mb"] for r in result["runs"])
    result["rows_per_s"] = round(rows / best["wall_s"])
    result |= flagged_share(db)
    return result


def rules_only(args: argparse.Namespace) -> dict:
    """``rescore --rules-only`` on the f40 database: the stored enriched items re-used."""
    db = args.work / "f40.duckdb"
    if not db.exists():
        raise SystemExit("the rules case needs the f40 case first (same --work)")
    runs = []
    for _ in range(args.repeat):
        wall, rss, cpu, out = measured([*ICCAUDIT, "rescore", "--db", str(db),
                                        "--rules-only", "--format", "json"])
        runs.append({"wall_s": round(wall, 2), "peak_rss_mb": round(rss), "cpu_s": round(cpu, 2),
                     "stages_s": json.loads(out).get("timings_s", {})})
    best = sorted(runs, key=lambda r: r["stages_s"].get("rules_s", 0))[(len(runs) - 1) // 2]
    return {"case": "rules", "rows": args.rows, "runs": runs} | best


def plot(results: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = [r for r in results if r.get("stages_s") and r["case"] != "rules"]
    bars = [("ingest_s", "ingest"), ("enrich_s", "enrich"), ("rules_s", "rules"),
            ("models_s", "models"), ("store_lines_s", "store (background)"),
            ("store_s", "store (end)"), ("wall_s", "whole run (wall)"),
            ("floor_s", "DuckDB bare load")]
    fig, ax = plt.subplots(figsize=(11, 4.6))
    width = 0.8 / len(bars)
    for i, (key, label) in enumerate(bars):
        vals = [float(r[key] if key in ("wall_s", "floor_s") else r["stages_s"].get(key, 0))
                for r in cases]
        xs = [c + (i - len(bars) / 2 + 0.5) * width for c in range(len(cases))]
        color = {"wall_s": "black", "floor_s": "grey"}.get(key)
        ax.bar(xs, vals, width, label=label, color=color)
    for c, r in enumerate(cases):
        ax.hlines(8 * r["floor_s"], c - 0.4, c + 0.4, colors="red", linestyles="dotted",
                  label="8x bare load" if c == 0 else None)
    ax.set_xticks(range(len(cases)))
    ax.set_xticklabels([f"{r['case']}: {r['rows'] / 1e6:g} M lines\n{r['shape']}, "
                        f"{r['flagged_share']:.0%} flagged, {r['findings'] / 1e3:.0f} k findings"
                        for r in cases], fontsize=6.5)
    ax.set_ylabel("seconds (stages overlap)")
    ax.set_title("iccaudit score per stage beside DuckDB's bare load of the same input")
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, metadata={"Date": None} if out.suffix == ".svg" else None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="f1,f10,f40,f40t30,files40,xlsx40,rules")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--files-rows", type=int, default=100_000)
    ap.add_argument("--xlsx-rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--parts", action="store_true",
                    help="each case whole, without the models, and without rules or models")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "iccaudit-bench")
    ap.add_argument("--plot", type=Path, help="write the chart (.svg or .png) here")
    ap.add_argument("--from", dest="source", type=Path, help="plot these results, run nothing")
    args = ap.parse_args()
    if args.source:
        results = json.loads(args.source.read_text())["results"]
    else:
        args.work.mkdir(parents=True, exist_ok=True)
        load_before = os.getloadavg()
        results = []
        for name in args.cases.split(","):
            if args.parts and name != "rules":
                results.append(run_parts(name, args))
                for part, r in results[-1]["parts"].items():
                    print(f"{name:8} {part:9} wall {r['wall_s']:6.2f} s  x {r['x_floor']:5.2f}  "
                          f"cpu {r['cpu_s']:6.2f} s (floor {r['floor_cpu_s']})  "
                          f"peak {r['peak_rss_mb']} MB", flush=True)
                continue
            results.append(rules_only(args) if name == "rules" else run_case(name, args))
            r = results[-1]
            print(f"{name:8} rows {r['rows']:>9,}  wall {r['wall_s']:6.2f} s  "
                  f"floor {r.get('floor_s', '-')}  x {r.get('x_floor', '-')}  "
                  f"cpu {r.get('cpu_s', '-')} s (floor {r.get('floor_cpu_s', '-')})  "
                  f"peak {r['peak_rss_mb']} MB  flagged {r.get('flagged_share', '-')}  "
                  f"stages {r.get('stages_s')}", flush=True)
        doc = {"machine": f"{os.cpu_count()} cores", "load_before": load_before,
               "load_after": os.getloadavg(), "results": results}
        (args.work / "findings.json").write_text(json.dumps(doc, indent=2))
        print(f"results in {args.work / 'findings.json'}")
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
