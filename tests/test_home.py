"""The data home: owner-only from the first byte, a key that is created once and never overwritten."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from clipkit import access, library, rendering, users
from clipkit.errors import KeyFileError
from clipkit.home import open_home
from clipkit.initialize import init_home


def _loose(root: Path) -> list[str]:
    out = []
    for folder, dirs, files in os.walk(root):
        for name in files + dirs:
            p = Path(folder) / name
            if not p.is_symlink() and stat.S_IMODE(p.stat().st_mode) & 0o077:
                out.append(f"{p.relative_to(root)} {oct(stat.S_IMODE(p.stat().st_mode))}")
    if stat.S_IMODE(root.stat().st_mode) & 0o077:
        out.append(". (the home itself)")
    return out


def test_everything_in_the_home_is_owner_only(tmp_path, make_audio, monkeypatch):
    os.umask(0o022)  # what a typical shell hands us
    home, _ = init_home(tmp_path / "home")
    from clipkit import db as dbmod

    db = dbmod.connect(home)
    (res,) = library.import_recordings(db, home, [make_audio("a.wav", seconds=4)], caller="06-1", agent="E-1",
                                       actor="t")
    cid = library.create_clip(db, home, res.id, start_s=0, end_s=3, title="t", author="m")
    rendering.render_clips(db, home, [cid], actor="m", workers=1)
    monkeypatch.setattr(users, "SCRYPT_N", 2**10)
    users.add_user(db, "c", role="compliance", password="x" * 12)
    access.access_bundle(db, home, users.authenticate(db, "c", "x" * 12), identifier="06-1", role="caller")
    db.close()
    assert _loose(home.root) == []


def test_an_old_world_readable_home_is_tightened_when_opened(home):
    for p in [home.root, home.audio_dir, home.db_path, home.root / "config.json"]:
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    assert _loose(home.root)
    open_home(home.root)
    assert _loose(home.root) == []


def test_the_key_is_never_written_through_a_planted_link(tmp_path):
    target = tmp_path / "attacker-reads-this"
    root = tmp_path / "home"
    root.mkdir()
    (root / "secret.key").symlink_to(target)
    with pytest.raises(KeyFileError, match="nothing was overwritten"):
        init_home(root)
    assert not target.exists()


def test_the_key_temp_name_is_unpredictable_and_left_nowhere(tmp_path):
    home, _ = init_home(tmp_path / "home")
    assert not list(home.root.glob(".secret.key*")) and not (home.root / "secret.key.tmp").exists()
    assert stat.S_IMODE(home.key_path.stat().st_mode) == 0o600
    key = home.key_path.read_text()
    init_home(home.root)  # an existing home is opened, never re-keyed
    assert home.key_path.read_text() == key
