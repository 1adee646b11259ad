"""Create a data home: its folders, key and settings (:mod:`clipkit.home`), then its database (:mod:`clipkit.db`).

The one place both meet, above them, so neither imports the other.
"""

from __future__ import annotations

import os

from . import db
from .home import Home, create_files


def init_home(home: str | os.PathLike | None = None, *, config: dict | None = None) -> tuple[Home, bool]:
    """Create a data home (folder, key, settings, database) if it does not exist.

    Returns ``(home, created)``. An existing home is opened, never re-keyed;
    its database is migrated to this version.
    """
    h, created = create_files(home, config=config)
    db.connect(h).close()
    return h, created
