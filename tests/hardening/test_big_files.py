"""Big and bomb-like files through `iccaudit score` in a child process: no hang, peak memory
under a generous documented bound (ru_maxrss of the child), counts reconcile.

Observed on a 2-core machine (duckdb 2.0, python-calamine 0.9): a 200k-row XLSX (12 MB) scores
in ~10 s at ~1.4 GB peak RSS; a million-row XLSX (60 MB) in ~42 s at ~4.1 GB (about 7 kB per line item across read, enrich, rules and store);
a 10 MB one-cell line at ~0.5 GB; zip bombs are refused at ~0.2 GB, before inflating.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from . import corpus as C
from .conftest import assert_one_line_error, check_database, run_cli

#: Bounds asserted (generous: about twice what is observed, so that they catch a regression
#: to "load everything several times over", not normal drift).
BIG_XLSX_ROWS = 200_000
BIG_XLSX_MAX_MB = 3000
MILLION_XLSX_MAX_MB = 8000
LONG_LINE_MAX_MB = 1200
BOMB_MAX_MB = 600


@pytest.fixture(scope="module")
def big_xlsx(tmp_path_factory) -> Path:
    return C.large_xlsx(tmp_path_factory.mktemp("big") / "large.xlsx", BIG_XLSX_ROWS)


def test_200k_row_xlsx_reconciles_in_bounded_memory(big_xlsx, tmp_path):
    db = tmp_path / "f.duckdb"
    out = run_cli(["score", str(big_xlsx), "--db", str(db), "--no-models", "-q"])
    assert out.code == 0 and "Traceback" not in out.text, out.text
    assert out.maxrss_mb < BIG_XLSX_MAX_MB, f"peak RSS {out.maxrss_mb:.0f} MB"
    counts = check_database(db)
    assert counts["line_items"] == BIG_XLSX_ROWS and counts["non_items"] == 1
    print(f"200k-row xlsx: peak RSS {out.maxrss_mb:.0f} MB")


@pytest.mark.slow
def test_million_row_xlsx_reconciles_in_bounded_memory(tmp_path):
    rows = 1_000_000
    path = C.large_xlsx(tmp_path / "million.xlsx", rows)
    db = tmp_path / "f.duckdb"
    out = run_cli(["score", str(path), "--db", str(db), "--no-models", "-q"], timeout=600)
    assert out.code == 0 and "Traceback" not in out.text, out.text
    assert out.maxrss_mb < MILLION_XLSX_MAX_MB, f"peak RSS {out.maxrss_mb:.0f} MB"
    counts = check_database(db)
    assert counts["line_items"] == rows and counts["non_items"] == 1
    print(f"1M-row xlsx: peak RSS {out.maxrss_mb:.0f} MB")


def test_ten_megabyte_line_is_a_value_too_long_reject(tmp_path):
    path = tmp_path / "long_line.csv"
    huge = "x" * (10 * 1024 * 1024)
    path.write_bytes(C.csv_bytes([C.HEADER, C.ROW]) + f"3,{huge},a,b,1,台,5,5,z\n".encode()
                     + C.csv_bytes([C.ROW2]))
    db = tmp_path / "f.duckdb"
    out = run_cli(["score", str(path), "--db", str(db), "--no-models", "-q"])
    assert out.code == 0 and "Traceback" not in out.text, out.text
    assert out.maxrss_mb < LONG_LINE_MAX_MB, f"peak RSS {out.maxrss_mb:.0f} MB"
    con = duckdb.connect(str(db), read_only=True)
    got = con.execute('SELECT source_row, reason, "column", detail FROM rejects').fetchall()
    con.close()
    assert got == [(3, "value_too_long", "货物名称",
                    "column 货物名称: cell of 10485760 characters (limit 32768)")]
    assert check_database(db)["line_items"] == 2


def test_zip_bombs_are_refused_before_inflating(tmp_path):
    honest = C.zip_bomb_xlsx(tmp_path / "bomb.xlsx", 1100 * 1024 * 1024)
    assert C.deflate_ratio(honest) > 100  # really a bomb: 1.1 GB from a few MB
    lying = C.lying_zip_bomb_xlsx(tmp_path / "lying.xlsx", 600 * 1024 * 1024)
    db = tmp_path / "f.duckdb"
    for path, words in ((honest, "possible zip bomb"),
                        (lying, "larger than its declared uncompressed size")):
        out = run_cli(["score", str(path), "--db", str(db), "--no-models", "-q"])
        assert_one_line_error(out, "nothing could be read", str(path), words)
        assert out.maxrss_mb < BOMB_MAX_MB, f"peak RSS {out.maxrss_mb:.0f} MB"
    assert not db.exists()
