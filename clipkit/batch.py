"""Batch import from a call recorder's metadata CSV: one row per file, with its caller, agent, time and basis.

Call recorders export a folder of audio files and a CSV describing them. The
CSV has a header row; the columns are

======================  =====================================================
``file`` (required)     the audio file, relative to the CSV's folder
``caller`` (required)   the caller's phone or customer number
``agent`` (required)    the agent's employee id
``recorded_at``         ISO 8601 time of the call (blank: now)
``channels``            ``caller,agent`` | ``agent,caller`` | ``mixed`` | ``caller=N,agent=M``
``basis``               ``contract`` | ``legitimate_interest`` | ``consent`` (blank: the default)
``notice``              the notice the caller heard
======================  =====================================================

Header names are matched without regard to case, spaces or ``-``/``_``.
:func:`parse_manifest` is pure: it checks the header (an unknown or missing
column fails the whole file, naming it) and returns one :class:`Row` per
line, a line with a problem carrying its error instead. :func:`import_manifest`
imports each good row through :func:`clipkit.library.import_recordings` (the
same checks, atomic store and log as a single import); a bad row or file is
reported with its line number and the rest goes on.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from sqlite_utils import Database

from . import library
from .errors import BadInput, ClipkitError
from .home import Home

COLUMNS = ("file", "caller", "agent", "recorded_at", "channels", "basis", "notice")
REQUIRED = ("file", "caller", "agent")
MAX_ROWS = 10_000
MAX_BYTES = 10 * 1024 * 1024


@dataclass
class Row:
    line: int
    values: dict = field(default_factory=dict)
    error: str | None = None


def _column(name: str) -> str:
    return "".join(ch for ch in name.strip().lower().replace("-", "_").replace(" ", "_") if ch.isalnum() or ch == "_")


def parse_manifest(text: str) -> list[Row]:
    """Rows of a metadata CSV (see the module docstring); header problems raise, row problems are kept per row.

    Raises
    ------
    BadInput
        For an empty file, a missing required column, an unknown or repeated
        column, or more than :data:`MAX_ROWS` rows.
    """
    if text.startswith("\ufeff"):
        text = text[1:]  # Excel's BOM
    # the header line says the delimiter: Dutch Excel writes ';', some recorders tabs
    first = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first.count)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = next(reader, None)
    if not header or not any(h.strip() for h in header):
        raise BadInput("the metadata CSV is empty; its first line must name the columns (file, caller, agent, ...)")
    names = [_column(h) for h in header]
    unknown = [h for h, n in zip(header, names) if n not in COLUMNS]
    if unknown:
        raise BadInput(f"unknown column(s) {', '.join(map(repr, unknown))} in the metadata CSV; "
                       f"the columns are {', '.join(COLUMNS)}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise BadInput(f"column(s) {', '.join(repeated)} appear twice in the metadata CSV")
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise BadInput(f"the metadata CSV has no {', '.join(missing)} column; {', '.join(REQUIRED)} are required")
    rows = []
    for cells in reader:
        if not any(c.strip() for c in cells):
            continue  # blank lines
        row = Row(line=reader.line_num)
        if len(rows) >= MAX_ROWS:
            raise BadInput(f"the metadata CSV has more than {MAX_ROWS} rows; split it")
        if len(cells) != len(names):
            row.error = f"line {row.line} has {len(cells)} cells, the header {len(names)}"
        else:
            row.values = {n: c.strip() for n, c in zip(names, cells) if c.strip()}
            blank = [c for c in REQUIRED if not row.values.get(c)]
            if blank:
                row.error = f"line {row.line}: {', '.join(blank)} must not be empty"
        rows.append(row)
    if not rows:
        raise BadInput("the metadata CSV has a header but no rows")
    return rows


def read_manifest(path: Path) -> list[Row]:
    """:func:`parse_manifest` of a file (UTF-8, or Windows-1252 as Excel writes it)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise BadInput(f"the metadata CSV {path} is {size} bytes; at most {MAX_BYTES} are read")
        raw = path.read_bytes()
    except OSError as e:
        raise BadInput(f"cannot read the metadata CSV {path}: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
    return parse_manifest(text)


def _resolve(base: Path, name: str, files: dict[str, Path] | None) -> Path:
    if files is not None:  # uploaded files, by their name
        key = Path(name).name
        if key not in files:
            raise BadInput(f"{name}: no uploaded file has this name")
        return files[key]
    path = Path(name)
    return path if path.is_absolute() else base / path


def import_manifest(db: Database, home: Home, rows: list[Row], *, base: Path, actor: str,
                    files: dict[str, Path] | None = None, progress=None) -> list[dict]:
    """Import every good row; returns one result per row: ``{"line", "file", "result": ImportResult | None, "error"}``.

    Parameters
    ----------
    base
        The folder relative file names are taken from (the CSV's folder).
    files
        For uploads: the files by name (a row's ``file`` is matched on its last
        path part); ``base`` is then not used.
    progress
        Called as ``progress(rows_done, rows)`` after each row.
    """
    out = []
    for done, row in enumerate(rows, start=1):
        out.append(_import_row(db, home, row, base=Path(base), actor=actor, files=files))
        if progress is not None:
            progress(done, len(rows))
    return out


def _import_row(db: Database, home: Home, row: Row, *, base: Path, actor: str, files: dict[str, Path] | None) -> dict:
    name = row.values.get("file") or "?"
    item = {"line": row.line, "file": name, "result": None, "error": row.error}
    if row.error:
        return item
    try:
        path = _resolve(base, name, files)
        (result,) = library.import_recordings(
            db, home, [path], caller=row.values["caller"], agent=row.values["agent"],
            channels=row.values.get("channels"), recorded_at=row.values.get("recorded_at"),
            basis=row.values.get("basis"), notice=row.values.get("notice"), actor=actor)
    except ClipkitError as e:
        item["error"] = f"line {row.line}: {e}"
        return item
    item["result"] = result
    if result.error:
        item["error"] = f"line {row.line}: {result.error}"
    return item
