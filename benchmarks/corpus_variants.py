"""Benchmark corpora that vary how many lines are flagged, how text-heavy they are, and shape.

``iccaudit samples --rows N`` writes one large CSV in which few lines are flagged (its schemes
are injected at low rates). The variants here start from that file and change it with one
DuckDB statement, so they are deterministic and cheap to make at any size:

- **flagged share** (``flagged``, 0-1): that share of the lines, chosen by a hash of the row
  number and the seed, is changed so that rules fire on it. Half of them are priced three
  times over (unit price and total: the price rules and the models), the other half get a
  total 25 % above quantity x unit price and a manufacture date years before purchase
  (bill arithmetic; old hardware on accelerator lines). The share of lines that end up with
  a finding is measured from the stored run, not assumed (the base file has a few already).
- **text-heavy share** (``text_heavy``, 0-1): that share of the lines gets a technical
  parameter text of about 400 characters, different on every line (no two the same, so the
  once-per-distinct-text parsers get no help).
- **shape**: one big CSV (``csv``), the same lines as thousands of small CSV files of one
  tender each (``files``), or one XLSX workbook (``xlsx``).

    python benchmarks/corpus_variants.py --rows 1000000 --flagged 0.4 --out /tmp/v40
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

PY = sys.executable
ICCAUDIT = [PY, "-m", "iccaudit.cli"]

#: A long technical parameter text (about 400 characters with the line's number in it).
LONG_SPEC = (
    "支持PCIe 5.0 x16接口，显存带宽不低于3.35TB/s，支持NVLink高速互联，支持多实例GPU（MIG）"
    "划分，整机支持液冷或风冷散热，提供BMC远程管理，支持IPMI 2.0与Redfish接口，冗余热插拔"
    "电源与风扇，支持国密算法加速，兼容主流深度学习框架（PyTorch、TensorFlow、MindSpore、"
    "PaddlePaddle），原厂三年7×24小时上门保修，质保期内备件先行，提供驻场工程师一名，"
    "含安装调试、系统部署、压力测试与性能验收报告，配套光纤跳线、电源线、导轨等全部附件，"
    "满足国家信息安全等级保护三级要求，交付前提供原厂授权书与出厂检验报告，"
)


def base_csv(work: Path, rows: int, seed: int = 3) -> Path:
    """The sample generator's large CSV of ``rows`` lines (made once, then reused)."""
    out = work / f"base{rows}"
    target = out / "tenders" / "tenders_large.csv"
    if not target.exists():
        subprocess.run([*ICCAUDIT, "samples", "--out", str(out), "--rows", str(rows),
                        "--seed", str(seed)], check=True, capture_output=True)
    return target


def variant_sql(src: Path, header: list[str], flagged: float, text_heavy: float,
                seed: int) -> str:
    """One SELECT over ``src`` that yields the variant's rows, in the file's order."""
    pick = round(flagged * 10_000)
    heavy = round(text_heavy * 10_000)
    price, total = "\"单价(元)\"", "\"总价(元)\""
    changed = {
        "单价(元)": f"CASE WHEN _h < {pick} AND _h % 2 = 0 AND try_cast({price} AS DOUBLE) "
                   f"IS NOT NULL THEN CAST(round(try_cast({price} AS DOUBLE) * 3) AS BIGINT)"
                   f"::VARCHAR ELSE {price} END",
        "总价(元)": f"CASE WHEN _h < {pick} AND try_cast({total} AS DOUBLE) IS NOT NULL "
                   f"THEN CAST(round(try_cast({total} AS DOUBLE) * (CASE WHEN _h % 2 = 0 "
                   f"THEN 3 ELSE 1.25 END)) AS BIGINT)::VARCHAR ELSE {total} END",
        "技术参数": f"CASE WHEN _t < {heavy} THEN coalesce(\"技术参数\", '') || '；{LONG_SPEC}"
                   f"编号' || _n::VARCHAR ELSE \"技术参数\" END",
        "生产日期": f"CASE WHEN _h < {pick} AND _h % 2 = 1 THEN '2016-03-01' "
                   f"ELSE \"生产日期\" END",
    }
    cols = ", ".join(f'{changed[c]} AS "{c}"' if c in changed else f'"{c}"' for c in header)
    return f"""
    WITH src AS (
      SELECT *, row_number() OVER () AS _n
      FROM read_csv('{src}', all_varchar = true, header = true)
    ), h AS (
      SELECT *, hash(_n, {seed}) % 10000 AS _h, hash(_n, {seed} + 1) % 10000 AS _t FROM src
    )
    SELECT {cols} FROM h ORDER BY _n
    """


def make_variant(work: Path, rows: int, flagged: float, text_heavy: float = 0.0,
                 shape: str = "csv", seed: int = 3) -> Path:
    """Write the variant once and return its path (a CSV, a folder of CSVs or an XLSX)."""
    import duckdb

    name = f"v{rows}_f{round(flagged * 100)}_t{round(text_heavy * 100)}"
    folder = work / name
    csv = folder / "tenders.csv"
    if not csv.exists():
        folder.mkdir(parents=True, exist_ok=True)
        src = base_csv(work, rows, seed)
        con = duckdb.connect()
        header = [c for (c,) in con.execute(
            f"SELECT column_name FROM (DESCRIBE SELECT * FROM read_csv('{src}', "
            "all_varchar = true))").fetchall()]
        tmp = folder / "tmp.csv"
        con.execute(f"COPY ({variant_sql(src, header, flagged, text_heavy, seed)}) "
                    f"TO '{tmp}' (HEADER)")
        tmp.replace(csv)
        con.close()
    if shape == "csv":
        return csv
    if shape == "files":
        return _small_files(csv, folder / "files")
    if shape == "xlsx":
        return _xlsx(csv, folder / "tenders.xlsx")
    raise ValueError(f"unknown shape {shape!r}")


def _small_files(csv: Path, out: Path) -> Path:
    """One CSV per tender (about 50 lines each): thousands of small files."""
    import duckdb

    if out.exists():
        return out
    out.mkdir()
    con = duckdb.connect()
    frame = con.execute(f"SELECT * FROM read_csv('{csv}', all_varchar = true)").df()
    for i, (_, part) in enumerate(frame.groupby(frame.columns[0], sort=False)):
        part.to_csv(out / f"t{i:06d}.csv", index=False)
    con.close()
    return out


def _xlsx(csv: Path, out: Path) -> Path:
    """The lines as one XLSX sheet (openpyxl's write-only mode; text cells as written)."""
    import duckdb
    from openpyxl import Workbook

    if out.exists():
        return out
    con = duckdb.connect()
    cur = con.execute(f"SELECT * FROM read_csv('{csv}', all_varchar = true)")
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("分项报价表")
    ws.append([d[0] for d in cur.description])
    while batch := cur.fetchmany(10_000):
        for r in batch:  # a one-off file write of the benchmark's input, not line-item work
            ws.append(list(r))
    tmp = out.with_suffix(".tmp.xlsx")
    wb.save(tmp)
    tmp.replace(out)
    con.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--flagged", type=float, default=0.4)
    ap.add_argument("--text-heavy", type=float, default=0.0)
    ap.add_argument("--shape", choices=["csv", "files", "xlsx"], default="csv")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--work", type=Path, default=Path("/tmp/iccaudit-bench"))
    args = ap.parse_args()
    print(make_variant(args.work, args.rows, args.flagged, args.text_heavy, args.shape,
                       args.seed))


if __name__ == "__main__":
    main()
