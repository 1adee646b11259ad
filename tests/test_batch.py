"""Batch import from a call recorder's metadata CSV: header checks, per-row results, the CLI and the app."""

from __future__ import annotations

import pytest

from clipkit import batch, library
from clipkit.errors import BadInput


@pytest.mark.parametrize("text, match", [
    ("", "empty"),
    ("file,caller\nx.wav,06-1\n", "no agent column"),
    ("file,caller,agent,colour\nx.wav,1,2,red\n", "unknown column.*'colour'"),
    ("file,caller,agent,Caller\nx.wav,1,2,3\n", "appear twice"),
    ("file,caller,agent\n", "no rows"),
])
def test_header_problems_fail_the_whole_file_naming_them(text, match):
    with pytest.raises(BadInput, match=match):
        batch.parse_manifest(text)


def test_rows_are_read_as_excel_and_recorders_write_them():
    # a BOM, semicolons (Dutch Excel), header spelt loosely, a blank line, a short row, an empty caller
    text = ("\ufeffFile;Caller;Agent;Recorded-At;Channels\n"
            "a.wav;06-12345678;E-1;2026-05-01T10:00:00+02:00;mixed\n\n"
            "b.wav;06-1\n"
            "c.wav;;E-1;;\n")
    rows = batch.parse_manifest(text)
    assert [r.line for r in rows] == [2, 4, 5]
    assert rows[0].values == {"file": "a.wav", "caller": "06-12345678", "agent": "E-1",
                              "recorded_at": "2026-05-01T10:00:00+02:00", "channels": "mixed"}
    assert "2 cells" in rows[1].error and "caller must not be empty" in rows[2].error


def test_each_row_is_imported_with_its_own_facts_and_bad_rows_are_reported(db, home, make_audio, tmp_path):
    folder = make_audio("one.wav", seconds=4.0, seed=1).parent
    make_audio("two.wav", seconds=5.0, seed=2)
    (folder / "calls.csv").write_text(
        "file,caller,agent,recorded_at,basis\n"
        "one.wav,06-11111111,E-1,2026-05-01T10:00:00+02:00,contract\n"
        "two.wav,06-22222222,E-2,,consent\n"
        "missing.wav,06-3,E-3,,\n"
        "one.wav,06-11111111,E-1,not a time,\n")
    rows = batch.read_manifest(folder / "calls.csv")
    items = batch.import_manifest(db, home, rows, base=folder, actor="m")
    ok = [it for it in items if it["error"] is None]
    assert [it["file"] for it in ok] == ["one.wav", "two.wav"]
    recs = {r["id"]: r for r in library.list_recordings(db)[0]}
    first, second = (recs[it["result"].id] for it in ok)
    assert first["basis"] == "contract" and first["recorded_at"].startswith("2026-05-01T10:00:00")
    assert second["basis"] == "consent" and first["caller_ref"] != second["caller_ref"]
    errors = {it["line"]: it["error"] for it in items if it["error"]}
    assert set(errors) == {4, 5} and "line 5" in errors[5]
    assert library.list_recordings(db)[1] == 2


def test_cli_import_manifest(cli_run, make_audio, tmp_path):
    csv_path = make_audio("one.wav", seconds=4.0, seed=3).parent / "calls.csv"
    csv_path.write_text("file,caller,agent\none.wav,06-11111111,E-1\nnope.wav,06-2,E-2\n")
    r, out = cli_run("import", "--manifest", csv_path)
    assert r.exit_code == 1  # one row failed
    assert len(out["recordings"]) == 1 and out["recordings"][0]["duration_s"] == pytest.approx(4.0, abs=0.01)
    (err,) = out["errors"]
    assert "line 3" in err["error"]
    r, out = cli_run("import", "--manifest", csv_path, "--caller", "06-1")
    assert r.exit_code == 2 and "cannot be combined" in out["error"]["message"]
    r, out = cli_run("import")
    assert r.exit_code == 2 and "--manifest" in out["error"]["message"]
    bad = csv_path.with_name("bad.csv")
    bad.write_text("file,caller\none.wav,06-1\n")
    r, out = cli_run("import", "--manifest", bad)
    assert r.exit_code == 1 and out["error"]["code"] == "bad_input" and "agent" in out["error"]["message"]
