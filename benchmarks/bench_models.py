"""Benchmark of the outlier models: fit + score time and peak memory at 100 k and 1 M lines.

A script, not a test: it prints a table. Run from the repository root:

    /work/venv/bin/python benchmarks/bench_models.py            # 100k and 1M, bundled settings
    /work/venv/bin/python benchmarks/bench_models.py --rows 100000 --ensemble ecod,copod

Synthetic items rows (iccaudit.detect.models.synthetic) stand in for the ``items`` view.
Time covers features, peer groups, every detector fit, normalisation and gating
(``score_items``); the findings frame (evidence JSON in DuckDB) is timed apart. Peak memory is
the process's maximum resident set size (getrusage), which includes the data itself; the
tracemalloc peak of the scoring step (Python allocations, numpy included) is shown beside it.
Target on a 2-core machine: <= 10 s and <= 3 GB for 1 M lines.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append",
                        help="row count (repeatable); default 100000 and 1000000")
    parser.add_argument("--ensemble", help="comma-separated detectors (default: models.yaml)")
    parser.add_argument("--no-tracemalloc", action="store_true",
                        help="skip the tracemalloc run (it slows numpy allocation a little)")
    args = parser.parse_args(argv)

    import numpy as np
    from sklearn.metrics import roc_auc_score

    from iccaudit.detect.models import load_settings
    from iccaudit.detect.models.detectors import OutlierDetector
    from iccaudit.detect.models.findings import build_findings
    from iccaudit.detect.models.scoring import score_items
    from iccaudit.detect.models.synthetic import synthetic_items

    settings = load_settings()
    if args.ensemble:
        settings = settings.model_copy(update={"ensemble": args.ensemble.split(",")})
    # Warm up: PyOD import and numba compilation happen once per process, not per million rows.
    t0 = time.perf_counter()
    warm = np.random.default_rng(0).normal(size=(64, 3))
    for name in settings.ensemble:
        OutlierDetector(detector=name).fit(warm)
    warmup = time.perf_counter() - t0

    print(f"ensemble={'+'.join(settings.ensemble)} normalise={settings.normalise} "
          f"combine={settings.combine}; one-off import + JIT warm-up {warmup:.2f} s")
    header = (f"{'rows':>9} {'groups':>6} {'gen s':>6} {'score s':>8} {'findings s':>10} "
              f"{'flagged':>8} {'ROC-AUC':>8} {'recall':>7} {'maxRSS GB':>9} {'tracemalloc GB':>14}")
    print(header)
    print("-" * len(header))
    for rows in args.rows or [100_000, 1_000_000]:
        t = time.perf_counter()
        items, labels = synthetic_items(rows, seed=1)
        gen = time.perf_counter() - t
        t = time.perf_counter()
        scored = score_items(items, settings, seed=0)
        fit = time.perf_counter() - t
        flagged = scored.lines[scored.lines["flagged"]]
        t = time.perf_counter()
        build_findings("bench", settings, flagged, scored.drivers, items, None)
        fnd = time.perf_counter() - t
        rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux
        traced = "-"
        if not args.no_tracemalloc:
            tracemalloc.start()
            score_items(items, settings, seed=0)
            traced = f"{tracemalloc.get_traced_memory()[1] / 1024**3:.2f}"
            tracemalloc.stop()
        truth = scored.lines["item_id"].map(dict(zip(items["item_id"], labels, strict=True)))
        auc = roc_auc_score(truth, scored.lines["score"])
        recall = scored.lines.loc[truth.to_numpy() == 1, "flagged"].mean()
        print(f"{rows:>9} {len(scored.groups):>6} {gen:>6.2f} {fit:>8.2f} {fnd:>10.2f} "
              f"{len(flagged):>8} {auc:>8.3f} {recall:>7.3f} {rss_gb:>9.2f} {traced:>14}")
        del items, labels, scored, flagged
    return 0


if __name__ == "__main__":
    sys.exit(main())
