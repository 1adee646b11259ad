"""A process killed at any step of an import or a render leaves nothing the next command does not remove."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from clipkit import library, store
from clipkit.cli import cli

ROOT = Path(__file__).resolve().parent.parent

# run in a child process: patch the seam so the process SIGKILLs itself at STEP, then import
CHILD = textwrap.dedent("""
    import os, signal, sys, time
    from pathlib import Path
    from clipkit import db as dbmod, library, store
    from clipkit.home import open_home

    home_root, step, *files = sys.argv[1:]

    def seam(name):
        if name == step:
            os.kill(os.getpid(), signal.SIGKILL)
        if step.startswith("sleep:") and name == step[6:]:
            time.sleep(2.0)

    store._seam = seam
    if step == "mid-copy":
        real = library._copy_hashing

        def half(src, dst):
            data = Path(src).read_bytes()
            with open(dst, "xb") as f:
                f.write(data[: len(data) // 2])
                f.flush()
                os.fsync(f.fileno())
            os.kill(os.getpid(), signal.SIGKILL)

        library._copy_hashing = half
    home = open_home(home_root)
    db = dbmod.connect(home)
    out = library.import_recordings(db, home, files, caller="06-12345678", agent="E-0007", actor="child")
    print([r.as_dict() for r in out])
""")


def run_child(home, step: str, files: list[Path], *, wait: bool = True):
    args = [sys.executable, "-c", CHILD, str(home.root), step, *map(str, files)]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if wait:
        proc.wait(timeout=60)
    return proc


def unaccounted(db, home) -> dict:
    """What the store and tmp/ hold that no row accounts for."""
    return {"audio": store.orphans(db, home),
            "tmp": sorted(str(p.relative_to(home.tmp_dir)) for p in home.tmp_dir.rglob("*"))}


@pytest.mark.parametrize("step", ["copy", "mid-copy", "copied", "journaled", "placed", "rows", "committed"])
def test_an_import_killed_at_any_step_leaves_nothing_unaccounted_for(db, home, make_audio, step, monkeypatch):
    files = [make_audio("a.wav", seconds=3), make_audio("b.wav", seconds=3)]
    proc = run_child(home, step, files)
    assert proc.returncode == -9, proc.stderr  # really killed at that step
    # the next command, whatever it is, cleans up
    monkeypatch.delenv("CLIPKIT_HOME", raising=False)
    r = CliRunner().invoke(cli, ["--home", str(home.root), "--json", "recordings"])
    assert r.exit_code == 0, r.output
    assert unaccounted(db, home) == {"audio": [], "tmp": []}
    n = library.list_recordings(db)[1]
    assert n == (2 if step == "committed" else 0)
    # and the same files import cleanly afterwards
    out = library.import_recordings(db, home, files, caller="06-12345678", agent="E-0007", actor="t")
    assert [r.error for r in out] == [None, None]
    assert [r.duplicate for r in out] == [step == "committed"] * 2
    assert unaccounted(db, home) == {"audio": [], "tmp": []}


def test_a_running_import_is_never_cleaned_up_under_it(db, home, make_audio):
    """The clean-up takes a scratch folder only when its lock is free: a live owner keeps it."""
    with store.Scratch(home, "import") as live:
        staged = live.path / "000000.wav"
        staged.write_bytes(b"RIFF" + b"\0" * 100)
        planned = home.audio_dir / "ab" / ("ab" + "0" * 62 + ".wav")
        planned.parent.mkdir(parents=True)
        planned.write_bytes(b"being placed")  # renamed in, rows not yet committed
        live.journal([planned])
        assert store.reconcile(db, home)["scratch"] == 0
        assert staged.exists() and planned.exists()
    # the owner finished without committing (it would have removed the file itself); once it is gone,
    # the next clean-up finds the file nobody accounts for
    assert store.sweep(db, home) == [f"audio/ab/{planned.name}"]


def test_two_processes_importing_the_same_new_file_make_one_recording(db, home, make_audio):
    f = make_audio("same.wav", seconds=3)
    slow = run_child(home, "sleep:journaled", [f], wait=False)  # copies, then waits before its transaction
    time.sleep(0.5)
    fast = run_child(home, "none", [f])
    assert fast.returncode == 0, fast.stderr.read()
    out, err = slow.communicate(timeout=60)
    assert slow.returncode == 0, err
    assert "UNIQUE" not in err + out and "restore" not in err
    assert "'duplicate': True" in out and "'differs': []" in out
    assert library.list_recordings(db)[1] == 1
    assert unaccounted(db, home) == {"audio": [], "tmp": []}


def test_a_render_killed_after_placing_its_file_leaves_no_orphan(db, home, recording, clip, monkeypatch):
    child = textwrap.dedent(f"""
        import os, signal
        from clipkit import db as dbmod, rendering, store
        from clipkit.home import open_home
        store._seam = lambda name: None
        real = store.place

        def place(src, dest):
            real(src, dest)
            os.kill(os.getpid(), signal.SIGKILL)  # renamed in, transaction never committed

        store.place = place
        home = open_home({str(home.root)!r})
        rendering.render_clips(dbmod.connect(home), home, [{clip['id']}], actor="child", workers=1)
    """)
    proc = subprocess.run([sys.executable, "-c", child], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    assert list((home.audio_dir / "renders").glob("*.wav"))  # the orphan is there...
    r = CliRunner().invoke(cli, ["--home", str(home.root), "--json", "list"])
    assert r.exit_code == 0
    assert unaccounted(db, home) == {"audio": [], "tmp": []}  # ...and the next command removed it


def test_erasure_removes_a_store_file_that_no_row_names(db, home, recording, make_audio):
    stray = home.audio_dir / "cd" / ("cd" + "1" * 62 + ".flac")
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(library.recording_path(home, recording).read_bytes())  # a copy nobody accounts for
    from clipkit import erasure

    plan = erasure.erase(db, home, identifier="06-12345678", actor="dpo", dry_run=True)
    assert plan["orphans"] == [f"audio/cd/{stray.name}"]
    out = erasure.erase(db, home, identifier="06-12345678", actor="dpo")
    assert out["orphans_removed"] == [f"audio/cd/{stray.name}"] and not stray.exists()
    assert json.dumps(out)  # plain data
    assert os.listdir(home.audio_dir) == [] or all(not list((home.audio_dir / d).iterdir())
                                                   for d in os.listdir(home.audio_dir))
