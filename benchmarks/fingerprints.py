"""Finding fingerprints: what a run found, in a form two versions of the code can be compared on.

A script, not a test (the test ``tests/test_fingerprints.py`` uses it on small corpora). It
scores each corpus into a fresh database and writes one line per finding, sorted: the finding
id (a hash of the detector and the lines it implicates), where it points, what it says and how
much money it puts at risk. Run ids and timings are left out, so two runs of the same code on
the same inputs give the same file, byte for byte.

    python benchmarks/fingerprints.py data/samples/tenders --out /tmp/samples.tsv
    python benchmarks/fingerprints.py /tmp/big.csv --out /tmp/big.tsv --no-models
    diff /tmp/before.tsv /tmp/after.tsv
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

COLUMNS = (
    "finding_id", "group_id", "detector", "kind", "mechanism", "severity",
    "round(score, 6)", "round(est_excess_cny, 2)", "tender_id", "line_no",
    "source_file", "source_sheet", "source_row", "message", "message_en", "evidence",
)


def fingerprints(db: Path) -> list[str]:
    """One tab-separated line per finding of the database's latest run, sorted."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        run = con.execute("SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()
        rows = con.execute(
            f"SELECT {', '.join(COLUMNS)} FROM findings WHERE run_id = ?", [run[0]]).fetchall()
    finally:
        con.close()
    # source_file is kept as its name only, so corpora in different folders compare
    out = ["\t".join("" if v is None else (Path(str(v)).name if i == 10 else str(v))
                     for i, v in enumerate(row)) for row in rows]
    return sorted(out)


def score_and_fingerprint(paths: list[Path], *, models: bool = True,
                          extra: list[str] | None = None) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="iccaudit-fp-") as tmp:
        db = Path(tmp) / "fp.duckdb"
        cmd = [sys.executable, "-m", "iccaudit.cli", "score", *map(str, paths), "--db", str(db),
               "--quiet", *([] if models else ["--no-models"]), *(extra or [])]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"score failed ({proc.returncode}): {proc.stderr[-2000:]}")
        return fingerprints(db)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--no-models", action="store_true")
    args = parser.parse_args()
    lines = score_and_fingerprint(args.paths, models=not args.no_models)
    args.out.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    print(f"{len(lines)} findings -> {args.out}")
    subprocess.run(["sha256sum", str(args.out)], check=False)


if __name__ == "__main__":
    main()
