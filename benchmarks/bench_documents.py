"""Benchmark of the document readers: time to read 100 PDF pages, and lines read per format.

A script, not a test: it prints two tables. Run from the repository root:

    .venv/bin/python benchmarks/bench_documents.py
    .venv/bin/python benchmarks/bench_documents.py --pages 100 --corpus data/samples/formats \\
        --corpus real-examples/paraguay/sample

``pdf``: a text PDF of ``--pages`` pages (a ruled Chinese table of line items, its header
repeated on every page, written by the samples' PDF writer) read by the PDF reader alone
(``read``: pdfplumber's tables, page by page) and by the whole ingest (``ingest``: read, then
header search and normalising). ``formats``: every file under each ``--corpus`` folder
ingested, the rows read and what they became, per format, with the time per format.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def _pdf(path: Path, pages: int) -> Path:
    """A PDF of about ``pages`` full pages (the rows per page measured on a first try)."""
    import pdfplumber

    from iccaudit.samples.pdfdoc import write_table_pdf

    header = ["序号", "货物名称", "品牌", "规格型号", "数量", "单位", "单价（元）", "合价（元）"]

    def write(n: int) -> int:
        rows = [[str(i), "GPU服务器", "浪潮", f"NF5688M7 (8×H100) 批次{i % 7}", "2", "台",
                 "2450000", "4900000"] for i in range(1, n + 1)]
        write_table_pdf(path, ["分项报价表", "项目编号：ZB-2024-100"], header, rows, [])
        with pdfplumber.open(path) as pdf:
            return len(pdf.pages)

    per_page = 200 / max(1, write(200) - 0.5)
    write(int(per_page * (pages - 0.5)))
    return path


def bench_pdf(pages: int) -> None:
    import pdfplumber

    from iccaudit.normalise import ingest
    from iccaudit.read import read_file

    with tempfile.TemporaryDirectory() as tmp:
        path = _pdf(Path(tmp) / "bench.pdf", pages)
        with pdfplumber.open(path) as pdf:
            n_pages = len(pdf.pages)
        t0 = time.perf_counter()
        got = read_file(path)
        read_s = time.perf_counter() - t0
        assert got.result is not None, got.error
        t0 = time.perf_counter()
        batch = ingest([path])
        ingest_s = time.perf_counter() - t0
    print(f"{'pdf pages':>10} {'rows read':>10} {'items':>8} {'read s':>8} {'ingest s':>9} "
          f"{'s / 100 pages':>14}")
    record = batch.files.iloc[0]
    print(f"{n_pages:>10} {record['rows_read']:>10,} {batch.n_items:>8,} {read_s:>8.2f} "
          f"{ingest_s:>9.2f} {ingest_s * 100 / n_pages:>14.2f}")


def bench_formats(corpora: list[Path]) -> None:
    import pandas as pd

    from iccaudit.normalise import ingest

    frames = []
    for folder in corpora:
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        for path in files:
            t0 = time.perf_counter()
            batch = ingest([path])
            seconds = time.perf_counter() - t0
            frames.append(batch.files.assign(seconds=seconds))
    table = pd.concat(frames, ignore_index=True)
    table["format"] = table["format"].where(table["status"] != "skipped", "(skipped)")
    summary = table.groupby("format").agg(
        files=("source_file", "size"), ok=("status", lambda s: int((s == "ok").sum())),
        rows_read=("rows_read", "sum"), line_items=("line_items", "sum"),
        rejects=("rejects", "sum"), non_items=("non_items", "sum"), seconds=("seconds", "sum"))
    print(summary.to_string(float_format=lambda v: f"{v:.2f}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--corpus", type=Path, action="append",
                        help="folder whose files are read per format (repeatable; default: "
                             "data/samples/formats and data/samples/tenders)")
    args = parser.parse_args()
    bench_pdf(args.pages)
    print()
    bench_formats(args.corpus or [Path("data/samples/formats"), Path("data/samples/tenders")])


if __name__ == "__main__":
    main()
