"""Word, PDF and HTML tender documents: real files written by python-docx, fpdf2 and by hand,
read into line items with every row accounted for and each line's place in the document."""

from __future__ import annotations

import io

import docx
import pytest
from fpdf import FPDF
from PIL import Image

from iccaudit.read.pdf import NO_TEXT_LAYER

EN_HEADER = ["No.", "Item Name", "Model", "Quantity", "Unit Price", "Total"]


def _word(rows_a, rows_b=None, before=(), after=(), merge=None):
    document = docx.Document()
    for line in before:
        document.add_paragraph(line)
    for k, rows in enumerate([rows_a] + ([rows_b] if rows_b else [])):
        if k:
            document.add_paragraph("（续表）")
        table = document.add_table(rows=len(rows), cols=len(rows[0]))
        for i, row in enumerate(rows):
            for j, value in enumerate(row):
                if value is not None:
                    table.cell(i, j).text = value
        if merge and k == 0:
            for (r0, c0), (r1, c1) in merge:
                table.cell(r0, c0).merge(table.cell(r1, c1))
    for line in after:
        document.add_paragraph(line)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def test_docx_split_table_is_one_table_with_its_title(files, read, table):
    header, rows = table
    more = ["3", "InfiniBand交换机", "NVIDIA", "QM9700", "2", "台", "300000", "600000", "甲公司"]
    data = _word([header, *rows], [header, more, ["合计", "", "", "", "", "", "", "25000000", ""]],
                 before=["项目编号：ZB-2024-017"], after=["日期：2024年3月5日"])
    batch = read(files.raw("报价.docx", data))
    items = batch.items.sort_values("line_no")
    assert items["line_no"].tolist() == ["1", "2", "3"]
    assert items["tender_id"].unique().tolist() == ["ZB-2024-017"]
    assert items["date"].astype(str).unique().tolist() == ["2024-03-05"]
    assert items["source_sheet"].tolist() == ["table 1", "table 1", "table 2"]
    assert items["source_row"].tolist() == [2, 3, 2]
    kinds = batch.non_items.set_index(["source_sheet", "source_row"])["kind"].to_dict()
    assert kinds == {("table 1", 1): "header", ("table 2", 1): "header",
                     ("table 2", 3): "total"}
    assert batch.files.iloc[0]["format"] == "docx"


def test_docx_merged_cells_are_filled_like_excel(files, read):
    header = ["序号", "货物名称", "规格型号", "数量", "单价", "供应商"]
    rows = [header, ["1", "GPU服务器", "H100", "2", "2400000", "甲公司"],
            ["2", None, "H20", "4", "1300000", None]]
    # the supplier cell spans both lines (vertical merge); 货物名称 repeated by a merge too
    data = _word(rows, merge=[((1, 5), (2, 5)), ((1, 1), (2, 1))])
    batch = read(files.raw("m.docx", data))
    assert batch.items["supplier"].tolist() == ["甲公司", "甲公司"]
    assert batch.items["item_name"].tolist() == ["GPU服务器", "GPU服务器"]


@pytest.mark.parametrize(("data", "why"), [
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512, "password-protected"),
    (b"PK\x03\x04 not really a zip", "not a valid docx"),
])
def test_bad_docx_is_one_line_and_the_batch_goes_on(files, read, table, data, why):
    header, rows = table
    files.raw("坏.docx", data)
    files.text("ok.csv", [header, *rows])
    batch = read(files.root)
    bad = batch.files.set_index(batch.files["source_file"].str.rsplit("/", n=1).str[-1])
    assert bad.loc["坏.docx", "status"] == "error" and why in bad.loc["坏.docx", "error"]
    assert bad.loc["ok.csv", "line_items"] == 2
    assert any("坏.docx" in e and why in e and "\n" not in e for e in batch.errors)


def _pdf_table(rows: int, title: str = "") -> bytes:
    pdf = FPDF()
    pdf.set_font("helvetica", size=9)
    pdf.add_page()
    if title:
        pdf.cell(0, 8, title, new_x="LMARGIN", new_y="NEXT")
    with pdf.table() as t:  # ruled; the header row is repeated on every page
        r = t.row()
        for h in EN_HEADER:
            r.cell(h)
        for i in range(1, rows + 1):
            r = t.row()
            for v in (str(i), "GPU server", f"H20-{i}", "2", "1300000", "2600000"):
                r.cell(v)
        r = t.row()
        for v in ("Total", "", "", "", "", str(2600000 * rows)):
            r.cell(v)
    return bytes(pdf.output())


def test_pdf_table_over_pages_is_one_table(files, read):
    path = files.raw("t.pdf", _pdf_table(70, "Tender ID: TD-2024-7  Supplier: Acme Ltd"))
    batch = read(path)
    items = batch.items
    assert len(items) == 70 and items["line_no"].tolist() == [str(i) for i in range(1, 71)]
    assert items["tender_id"].unique().tolist() == ["TD-2024-7"]
    assert items["supplier"].unique().tolist() == ["Acme Ltd"]
    pages = items["source_sheet"].str.extract(r"^p\.(\d+) table 1$")[0].astype(int)
    assert pages.iloc[0] == 1 and pages.iloc[-1] >= 2 and pages.is_monotonic_increasing
    kinds = batch.non_items["kind"].value_counts().to_dict()
    assert kinds == {"header": pages.nunique(), "total": 1}  # the repeated headers dropped


def test_scanned_pdf_is_refused_with_its_reason(files, read):
    image = Image.new("RGB", (400, 300), "white")
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    pdf = FPDF()
    pdf.add_page()
    pdf.image(io.BytesIO(buf.getvalue()), x=10, y=10, w=150)
    batch = read(files.raw("scan.pdf", bytes(pdf.output())))
    record = batch.files.iloc[0]
    assert record["status"] == "error" and record["error"] == NO_TEXT_LAYER
    assert batch.errors == [f"{files.root / 'scan.pdf'}: {NO_TEXT_LAYER}"]


def test_encrypted_and_corrupt_pdf_are_one_line_each(files, read, table):
    pdf = FPDF()
    pdf.set_font("helvetica", size=9)
    pdf.add_page()
    pdf.cell(0, 8, "secret")
    pdf.set_encryption(owner_password="owner", user_password="user")
    files.raw("locked.pdf", bytes(pdf.output()))
    files.raw("broken.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage")
    header, rows = table
    files.text("ok.csv", [header, *rows])
    batch = read(files.root)
    status = dict(zip(batch.files["source_file"].str.rsplit("/", n=1).str[-1],
                      zip(batch.files["status"], batch.files["error"], strict=True),
                      strict=True))
    assert status["locked.pdf"][0] == "error" and "password" in status["locked.pdf"][1]
    assert status["broken.pdf"][0] == "error" and status["broken.pdf"][1].startswith(
        "cannot read")
    assert status["ok.csv"][0] == "ok"


NOTICE = """<html><head><meta charset="{charset}"><title>成交结果公告</title></head><body>
<h1>某智算中心GPU服务器采购项目成交结果公告</h1><p>发布时间：2024年06月03日</p>
<table><tr><td>项目编号：</td><td>HN-2024-0611</td></tr><tr><td>采购人</td><td>某市大数据局</td></tr>
<tr><td>成交供应商</td><td>北京算力科技有限公司</td></tr></table>
<div><table class="items"><thead><tr><th>序号</th><th>名称</th><th>品牌</th><th>规格型号</th>
<th>数量</th><th>单价（元）</th></tr></thead><tbody>
<tr><td>1</td><td rowspan="2">GPU服务器</td><td>浪潮</td><td>NF5688M7</td><td>4</td><td>2,450,000.00</td></tr>
<tr><td>2</td><td colspan="2">华为 Atlas 800T A2</td><td>2</td><td>1,500,000</td></tr>
<tr><td colspan="4">合计</td><td colspan="2">12,800,000</td></tr>
</tbody></table></div></body></html>"""


@pytest.mark.parametrize(("charset", "encoding"), [("gb2312", "gbk"), ("GBK", "gbk"),
                                                   ("utf-8", "utf-8")])
def test_award_notice_in_its_charset(files, read, charset, encoding):
    page = NOTICE.format(charset=charset)
    batch = read(files.raw("公告.html", page.encode(encoding)))
    items = batch.items
    assert items["item_name"].tolist() == ["GPU服务器", "GPU服务器"]  # the rowspan filled
    assert items["unit_price_cny"].tolist() == [2450000.0, 1500000.0]
    assert items["tender_id"].unique().tolist() == ["HN-2024-0611"]
    assert items["supplier"].unique().tolist() == ["北京算力科技有限公司"]
    assert items["buyer"].unique().tolist() == ["某市大数据局"]
    assert items["date"].astype(str).unique().tolist() == ["2024-06-03"]
    assert items["source_sheet"].unique().tolist() == ["/html/body/div/table"]
    assert (batch.non_items["kind"] == "total").sum() == 1
    assert batch.files.iloc[0]["encoding"] == ("gb18030" if encoding == "gbk" else "utf-8")


def test_page_without_item_table_is_one_line(files, read):
    batch = read(files.raw("news.htm", "<html><body><p>公告正文</p></body></html>".encode()))
    assert batch.files.iloc[0]["status"] == "error"
    assert len(batch.errors) == 1 and "no table in the page" in batch.errors[0]


def test_a_folder_of_documents_only_is_read(files, read, table):
    header, rows = table
    files.raw("a.docx", _word([header, *rows]))
    files.raw("b.pdf", _pdf_table(3))
    files.raw("c.doc", b"old word")
    batch = read(files.root)
    assert batch.n_items == 5
    status = batch.files.set_index(batch.files["source_file"].str.rsplit("/", n=1).str[-1])[
        "status"].to_dict()
    assert status == {"a.docx": "ok", "b.pdf": "ok", "c.doc": "skipped"}


def test_nothing_readable_says_what_was_found(files, tmp_path):
    from iccaudit.run import RunError, ScoreOptions, run_score

    files.raw("a.doc", b"old word")
    files.raw("b.wps", b"wps")
    with pytest.raises(RunError) as err:
        run_score(ScoreOptions(paths=[files.root], db=tmp_path / "f.duckdb", models=False))
    message = str(err.value)
    assert "no tender files found" not in message
    assert "2 file(s) found, none readable" in message and "unsupported file type .doc" in message


def test_unruled_pdf_table_by_its_text_alignment(files, read):
    pdf = FPDF()
    pdf.set_font("helvetica", size=9)
    pdf.add_page()
    pdf.cell(0, 8, "Tender ID: TD-9", new_x="LMARGIN", new_y="NEXT")
    rows = [["No.", "Item Name", "Model", "Quantity", "Unit Price"],
            ["1", "GPU server", "H20", "2", "1300000"], ["2", "Switch", "QM9700", "1", "300000"],
            ["3", "Cable", "MCP4Y10", "40", "5000"]]
    with pdf.table(borders_layout="NONE") as t:  # no rules: columns by alignment only
        for row in rows:
            r = t.row()
            for v in row:
                r.cell(v)
    batch = read(files.raw("u.pdf", bytes(pdf.output())))
    items = batch.items
    assert items["model"].tolist() == ["H20", "QM9700", "MCP4Y10"]
    assert items["unit_price_cny"].tolist() == [1300000.0, 300000.0, 5000.0]
    assert items["tender_id"].unique().tolist() == ["TD-9"]
