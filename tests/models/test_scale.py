"""What keeps the models fast and lean at a million lines (issue 7), checked for sameness:
a narrow Arrow read, integer peer keys and a result that does not depend on the row order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from iccaudit.detect.models import read_items, read_locations, run_models
from iccaudit.detect.models.features import assign_groups, encode, id_order, item_kind
from iccaudit.detect.models.scoring import score_items

from .conftest import items_db


def test_read_items_is_narrow_arrow_with_dictionary_text(fresh_db, settings):
    table = read_items(fresh_db, settings)
    assert isinstance(table, pa.Table)
    # Locations and unused text are read later, for flagged lines only.
    for col in ("source_file", "tender_id", "line_no", "source_sheet", "robust_z"):
        assert col not in table.column_names
    for col in ("category", "accel_model", "unit", "cooling_type", "item_name"):
        assert pa.types.is_dictionary(table.schema.field(col).type), col
    assert table.schema.field("unit_price_cny").type == pa.float64()
    assert table.schema.field("is_lump_sum").type == pa.float64()  # TRY_CAST AS DOUBLE
    assert table.num_rows == fresh_db.sql("SELECT count(*) FROM items").fetchall()[0][0]


def test_read_locations_returns_the_asked_lines_only(fresh_db, labelled_items):
    items = labelled_items[0]
    want = items["item_id"].iloc[[5, 17, 3000]].to_numpy()
    got = read_locations(fresh_db, want).sort_values("item_id").reset_index(drop=True)
    expected = items.loc[items["item_id"].isin(want),
                         ["item_id", "source_file", "source_row", "tender_id", "line_no"]]
    pd.testing.assert_frame_equal(got[expected.columns], expected.reset_index(drop=True),
                                  check_dtype=False)


def test_arrow_and_pandas_inputs_score_alike(fresh_db, labelled_items, settings):
    from_frame = score_items(labelled_items[0], settings, seed=0)
    from_arrow = score_items(read_items(fresh_db, settings), settings, seed=0)
    pd.testing.assert_frame_equal(from_frame.groups, from_arrow.groups)
    pd.testing.assert_frame_equal(from_frame.lines, from_arrow.lines, check_dtype=False)
    pd.testing.assert_frame_equal(from_frame.drivers, from_arrow.drivers)


def test_findings_do_not_depend_on_the_row_order_of_the_view(labelled_items):
    items = labelled_items[0]
    shuffled = items.sample(frac=1.0, random_state=3).reset_index(drop=True)
    assert not shuffled["item_id"].is_monotonic_increasing
    a, ra = run_models(items_db(items), "r", None, 0, None)
    b, rb = run_models(items_db(shuffled), "r", None, 0, None)
    assert len(a) > 0
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(ra, rb)


@pytest.mark.parametrize("ids, expected", [
    ([1, 2, 3, 4], None),                       # already in order
    ([3, 1, 4, 2], [1, 3, 0, 2]),               # dense 1..n: counting sort
    ([30, 10, 40, 20], [1, 3, 0, 2]),           # sparse: argsort
    ([2, 2, 4, 1], [3, 0, 1, 2]),               # dense span but a duplicate: argsort, stable
])
def test_id_order(ids, expected):
    got = id_order(np.array(ids, dtype=np.int64))
    assert (got is None) if expected is None else got.tolist() == expected


def test_peer_groups_follow_the_levels_on_integer_keys(settings):
    # 9 H100 servers (a group), 2 H200 servers (too small, and never mixed with H100),
    # 9 unnamed racks without a unit (fall back to category), one line without category.
    frame = pd.DataFrame({
        "item_id": np.arange(1, 22),
        "category": ["gpu_server"] * 11 + ["rack_power"] * 9 + [None],
        "accel_model": ["H100"] * 9 + ["H200"] * 2 + [None] * 10,
        "unit": [None] * 21,
        "cooling_type": [None] * 21,
        "item_name": ["GPU服务器 (8卡)"] * 11 + [None] * 10,
    })
    groups = assign_groups(frame, settings.group_levels, settings.min_peers,
                           kinds=item_kind(frame), item_ids=frame["item_id"].to_numpy())
    label = groups.labels[groups.code]
    assert label[:9].tolist() == ["gpu_server/H100"] * 9
    assert label[9:11].tolist() == ["gpu_server/H200"] * 2
    assert label[11:20].tolist() == ["rack_power"] * 9
    assert label[20] == "other"
    assert sorted(groups.labels.tolist()) == groups.labels.tolist()
    sizes = dict(zip(groups.labels, np.diff(groups.bounds), strict=True))
    assert sizes == {"gpu_server/H100": 9, "gpu_server/H200": 2, "other": 1, "rack_power": 9}
    # The same on an Arrow table (dictionary text), and item kinds ignore case and asides.
    table = pa.Table.from_pandas(frame, preserve_index=False)
    same = assign_groups(table, settings.group_levels, settings.min_peers,
                         kinds=item_kind(table), item_ids=frame["item_id"].to_numpy())
    assert same.labels.tolist() == groups.labels.tolist()
    assert (same.code == groups.code).all()
    kinds = item_kind(pa.table({"item_name": ["GPU服务器 (8卡)", "gpu服务器", None, " "]}))
    assert kinds.codes[0] == kinds.codes[1] >= 0 and (kinds.codes[2:] == -1).all()
    assert encode(table, "accel_model").codes[11:].tolist() == [-1] * 10


def test_flagged_lines_are_the_flagged_rows_of_lines(labelled_items, settings):
    scored = score_items(labelled_items[0], settings, seed=0)
    flagged = scored.flagged_lines()
    assert len(flagged) > 0 and flagged["flagged"].all()
    pd.testing.assert_frame_equal(
        flagged, scored.lines[scored.lines["flagged"]].reset_index(drop=True))
