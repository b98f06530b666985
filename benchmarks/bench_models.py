"""Benchmark of the outlier models: read, fit + score, findings, and peak memory.

A script, not a test: it prints a table. Run from the repository root:

    /work/venv/bin/python benchmarks/bench_models.py            # 100k and 1M synthetic lines
    /work/venv/bin/python benchmarks/bench_models.py --rows 100000 --ensemble ecod,copod
    /work/venv/bin/python benchmarks/bench_models.py --db items.duckdb   # a real items table

Synthetic ``items`` rows (iccaudit.detect.models.synthetic) are written to an in-memory DuckDB
table, and the models read it as the pipeline reads the sandbox: ``read`` is
:func:`read_items` (the narrow Arrow read), ``score`` is ``score_items`` (features, peer
groups, every detector fit, normalisation and gating), ``findings`` reads the flagged lines'
locations and builds the finding rows (evidence JSON in DuckDB). ``--db`` copies the ``items``
table of a DuckDB file (e.g. the sandbox's ``items`` saved from a real run) into memory first.
Peak memory is the process's maximum resident set size (getrusage), data included.
The one-off import of PyOD and numba's JIT is shown apart: the pipeline pays it once per process.
Target on a 2-core machine (issue 7): <= 1.5 s for the whole models stage at 1 M lines.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append",
                        help="synthetic row count (repeatable); default 100000 and 1000000")
    parser.add_argument("--db", help="DuckDB file with an items table to score instead")
    parser.add_argument("--ensemble", help="comma-separated detectors (default: models.yaml)")
    args = parser.parse_args(argv)

    import duckdb

    from iccaudit.detect.models import load_settings, read_items, read_locations
    from iccaudit.detect.models.detectors import warm_up
    from iccaudit.detect.models.findings import build_findings
    from iccaudit.detect.models.scoring import score_items
    from iccaudit.detect.models.synthetic import synthetic_items

    settings = load_settings()
    if args.ensemble:
        settings = settings.model_copy(update={"ensemble": args.ensemble.split(",")})
    t0 = time.perf_counter()
    warm_up(settings.ensemble)
    warmup = time.perf_counter() - t0
    print(f"ensemble={'+'.join(settings.ensemble)} normalise={settings.normalise} "
          f"combine={settings.combine}; one-off import + JIT warm-up {warmup:.2f} s")
    header = (f"{'rows':>9} {'groups':>6} {'read s':>7} {'score s':>8} {'findings s':>10} "
              f"{'total s':>8} {'flagged':>8} {'ROC-AUC':>8} {'recall':>7} {'maxRSS GB':>9}")
    print(header)
    print("-" * len(header))
    cases = [("db", 0)] if args.db else [("synthetic", r) for r in args.rows or
                                           [100_000, 1_000_000]]
    for kind, rows in cases:
        con = duckdb.connect()
        labels = None
        if kind == "db":
            con.execute("ATTACH ? AS src (READ_ONLY)", [args.db])
            con.execute("CREATE TABLE items AS SELECT * FROM src.items")
            con.execute("DETACH src")
        else:
            items, labels = synthetic_items(rows, seed=1)
            con.register("_src", items)
            con.execute("CREATE TABLE items AS SELECT * FROM _src")
            con.unregister("_src")
            del items
        t = time.perf_counter()
        table = read_items(con, settings)
        t_read = time.perf_counter() - t
        ids = table.column("item_id").to_numpy()
        t = time.perf_counter()
        scored = score_items(table, settings, seed=0)
        t_score = time.perf_counter() - t
        del table
        t = time.perf_counter()
        flagged = scored.flagged_lines()
        where = read_locations(con, flagged["item_id"].to_numpy())
        build_findings("bench", settings, flagged, scored.drivers, where, None)
        t_find = time.perf_counter() - t
        auc = recall = "-"
        if labels is not None:
            from sklearn.metrics import roc_auc_score

            # synthetic item_id i is row i - 1 of the generated frame
            truth = labels[scored.lines["item_id"].to_numpy() - 1]
            auc = f"{roc_auc_score(truth, scored.lines['score']):.3f}"
            recall = f"{scored.lines['flagged'].to_numpy()[truth == 1].mean():.3f}"
        total = t_read + t_score + t_find
        print(f"{len(ids):>9} {len(scored.groups):>6} {t_read:>7.2f} {t_score:>8.2f} "
              f"{t_find:>10.2f} {total:>8.2f} {len(flagged):>8} {auc:>8} {recall:>7} "
              f"{_rss_gb():>9.2f}")
        del scored, flagged, labels
        con.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
