"""The ``clipkit`` command: parse arguments, call the library, print the result.

A thin translator in the manner of sqlite-utils: no logic lives here. Every
command returns a JSON-able dict; with ``--json`` exactly one JSON object is
printed on stdout, otherwise a short human summary. Typed errors become a
one-line message and an exit code (1 bad input or failure, 2 usage, 3 refused
by policy) in one place, :func:`_run`.

Heavy modules (librosa) are imported inside the commands that process audio,
so ``clipkit --help`` and ``clipkit list`` start fast.
"""

from __future__ import annotations

import functools
import getpass
import json
import sys
from collections.abc import Callable

import click

from .errors import ClipkitError


def _default_actor() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user database entry (containers)
        return "cli"


def _store_global(ctx: click.Context, param: click.Parameter, value):
    # options may come before or after the subcommand; the last one given wins
    root = ctx.find_root()
    root.meta.setdefault("clipkit", {})
    if value is not None and value is not False:
        root.meta["clipkit"][param.name] = value
    return value


def global_options(f: Callable) -> Callable:
    f = click.option("--home", type=click.Path(file_okay=False), default=None, expose_value=False,
                     callback=_store_global, is_eager=True, envvar=None,
                     help="Data home folder (default: $CLIPKIT_HOME or ./clipkit-data).")(f)
    f = click.option("--json", "json_output", is_flag=True, default=False, expose_value=False,
                     callback=_store_global, is_eager=True, help="Print exactly one JSON object on stdout.")(f)
    return f


def _opts() -> dict:
    return click.get_current_context().find_root().meta.get("clipkit", {})


def _home():
    from .home import open_home

    return open_home(_opts().get("home"))


def _db(home):
    """The home's database, after cleaning up what a crashed command left (see clipkit.store)."""
    from . import db, store

    database = db.connect(home)
    store.reconcile(database, home)
    return database


def _emit(payload: dict, human: str | Callable[[dict], str] | None) -> None:
    if _opts().get("json_output"):
        click.echo(json.dumps(payload, ensure_ascii=False, default=str))
    else:
        text = human(payload) if callable(human) else human
        if text is None:
            text = json.dumps(payload, indent=2, ensure_ascii=False, default=str)
        if text:
            click.echo(text)


def _run(human: str | Callable[[dict], str] | None = None):
    """Wrap a command body that returns ``(payload, exit_code)`` or ``payload``."""

    def decorate(f):
        @functools.wraps(f)
        def wrapper(*args, **kwargs):
            try:
                out = f(*args, **kwargs)
            except ClipkitError as e:
                _fail(e.code, str(e), e.exit_code, extra=getattr(e, "payload", None))
            code = 0
            if isinstance(out, tuple):
                out, code = out
            _emit(out, human)
            sys.exit(code)

        return wrapper

    return decorate


def _fail(code: str, message: str, exit_code: int, extra: dict | None = None):
    if _opts().get("json_output"):
        payload = {"error": {"code": code, "message": message}}
        if extra:
            payload.update(extra)
        click.echo(json.dumps(payload, ensure_ascii=False, default=str))
    click.echo(f"Error: {message}", err=True)
    sys.exit(exit_code)


def _json_requested(args) -> bool:
    for a in args:
        if a == "--":
            return False
        if a == "--json":
            return True
    return False


class _Group(click.Group):
    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        # A usage error honours --json too: stdout then holds {"error": {"code": "usage", ...}}
        # (the message still goes to stderr, exit code 2).
        argv = list(sys.argv[1:] if args is None else args)
        if not standalone_mode:
            return super().main(argv, prog_name, complete_var, standalone_mode, **extra)
        try:
            rv = super().main(argv, prog_name, complete_var, False, **extra)
        except click.ClickException as e:
            if _json_requested(argv):
                code = "usage" if isinstance(e, click.UsageError) else "error"
                click.echo(json.dumps({"error": {"code": code, "message": e.format_message()}}, ensure_ascii=False))
            e.show()
            sys.exit(e.exit_code)
        except click.exceptions.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx):
        import os
        import sqlite3

        try:
            return super().invoke(ctx)
        except OSError as e:  # a disk or permission problem outside our typed errors
            import errno

            if e.errno == errno.ENOSPC:
                _fail("disk_full", "the disk is full; free some space and run the command again", 1)
            _fail("os_error", f"{getattr(e, 'filename', '') or ''} {e.strerror or e}".strip(), 1)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except OverflowError:  # e.g. an id beyond SQLite's 64-bit integers
            _fail("bad_input", "a number given is too large (ids and counts must be below 2**63)", 1)
        except sqlite3.DatabaseError as e:
            from .db import translate

            t = translate(e) if isinstance(e, sqlite3.OperationalError) else e
            if isinstance(t, ClipkitError):
                _fail(t.code, str(t), t.exit_code)
            # restoring a backup loses work: advise it only when SQLite itself finds the file damaged
            from .db import health
            from .home import DB_NAME, resolve_home_path

            path = resolve_home_path(_opts().get("home")) / DB_NAME
            state = health(path) if path.exists() else "ok"
            if state != "ok":
                _fail("database_corrupt", f"the database {path} is damaged ({state}); restore clipkit.db from "
                      "a backup", 1)
            _fail("database_error", f"the database refused the change ({e}); nothing was changed — "
                  "run the command again, and report it if it repeats", 1)
        except Exception as e:  # never a traceback for the user; CLIPKIT_DEBUG=1 shows it
            if os.environ.get("CLIPKIT_DEBUG"):
                raise
            _fail("internal_error", f"unexpected error ({type(e).__name__}: {e}); please report this", 1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@global_options
@click.version_option(package_name="clipkit")
def cli():
    """clipkit — turn recorded support calls into anonymized training clips.

    Every command accepts --home DIR and --json, before or after the
    command name. Exit codes: 0 ok, 1 bad input or failure, 2 usage error,
    3 refused by policy.
    """


# ---------------------------------------------------------------- home


@cli.command()
@global_options
@_run(lambda p: f"{'Created' if p['created'] else 'Already exists:'} data home {p['home']}")
def init():
    """Create a data home with its secret key (the only command that does)."""
    from .initialize import init_home

    home, created = init_home(_opts().get("home"))
    return {"home": str(home.root), "created": created}


# ---------------------------------------------------------------- import


def _import_human(p: dict) -> str:
    lines = []
    for r in p["recordings"]:
        state = "duplicate of" if r["duplicate"] else "imported as"
        lines.append(f"{r['path']}: {state} recording {r['id']} ({r['duration_s']:.1f} s, {r['channels']} ch)")
        if r.get("differs"):
            lines.append(f"{r['path']}: ERROR already imported with another {', '.join(r['differs'])}; nothing was "
                         "changed (the stored recording keeps what it was imported with)")
    for e in p["errors"]:
        lines.append(f"{e['path']}: ERROR {e['error']}")
    return "\n".join(lines)


@cli.command(name="import")
@global_options
@click.argument("paths", nargs=-1, type=click.Path(readable=False, dir_okay=True))
@click.option("--manifest", "manifest", default=None, type=click.Path(dir_okay=False),
              help="A call recorder's metadata CSV (file, caller, agent, recorded_at, channels, basis, notice): "
                   "one call per row, files relative to the CSV.")
@click.option("--caller", default=None, help="Caller's identifier (phone or customer number).")
@click.option("--agent", default=None, help="Agent's identifier (employee id).")
@click.option("--channels", default=None, help="caller,agent | agent,caller | mixed | caller=N,agent=M")
@click.option("--recorded-at", default=None, help="ISO 8601 time of the call (default: now).")
@click.option("--basis", type=click.Choice(["contract", "legitimate_interest", "consent"]), default=None,
              help="Legal basis of the recording (default from config: legitimate_interest).")
@click.option("--notice", default=None, help="The notice the caller heard, e.g. 'calls are recorded for quality'.")
@click.option("--actor", default=None, help="Who imports (recorded as given).")
@click.option("--allow-erased-party", is_flag=True,
              help="Import even if a party was erased at their request (needs --reason, the lawful reason).")
@click.option("--reason", default=None, help="With --allow-erased-party: the lawful reason (kept as an erasable note).")
@_run(_import_human)
def import_(paths, manifest, caller, agent, channels, recorded_at, basis, notice, actor, allow_erased_party, reason):
    """Import call recordings (WAV, FLAC, OGG, MP3; 8–48 kHz; mono or stereo).

    Either FILES with --caller and --agent, or --manifest FILE.csv with one row per call.
    """
    from pathlib import Path

    from . import batch, library

    if manifest is not None:
        given = [n for n, v in (("FILES", paths), ("--caller", caller), ("--agent", agent), ("--channels", channels),
                                ("--recorded-at", recorded_at), ("--basis", basis), ("--notice", notice),
                                ("--allow-erased-party", allow_erased_party)) if v]
        if given:
            raise click.UsageError(f"--manifest gives every call's facts; {', '.join(given)} cannot be combined "
                                   "with it")
        rows = batch.read_manifest(Path(manifest))
    elif not paths or caller is None or agent is None:
        missing = [n for n, v in (("FILES", paths), ("--caller", caller), ("--agent", agent)) if not v]
        raise click.UsageError(f"missing {', '.join(missing)}: give the files with --caller and --agent, "
                               "or a metadata CSV with --manifest")
    home = _home()
    with _db(home) as db:
        if manifest is not None:
            items = batch.import_manifest(db, home, rows, base=Path(manifest).resolve().parent,
                                          actor=actor or _default_actor())
            results = [it["result"] if it["error"] is None else
                       library.ImportResult(path=f"{manifest}:{it['line']} {it['file']}", error=it["error"])
                       for it in items]
        else:
            results = library.import_recordings(
                db, home, list(paths), caller=caller, agent=agent, channels=channels, recorded_at=recorded_at,
                basis=basis, notice=notice, actor=actor or _default_actor(), allow_suppressed=allow_erased_party,
                override_reason=reason,
            )
        from . import analysis

        done = analysis.analyze_imported(db, home, results)
        scores = {a["recording_id"]: a["difficulty"] for a in done["analyzed"]}
    payload = {
        "recordings": [dict(r.as_dict(), difficulty=scores.get(r.id)) for r in results if not r.error],
        "errors": [r.as_dict() for r in results if r.error],
    }
    # a duplicate imported with other facts than it was stored with is not what was asked for
    differs = any(r.get("differs") for r in payload["recordings"])
    return payload, (1 if payload["errors"] or differs else 0)


def _recordings_human(p: dict) -> str:
    lines = []
    for r in p["recordings"]:
        score = "  –  " if r["difficulty"] is None else f"{r['difficulty']:5.1f}"
        lines.append(
            f"{r['id']:>5}  {score}  {r['recorded_at'][:16]}  {r['duration_s']:7.1f} s  {r['channels']} ch  "
            f"{r['channel_map']:<18} {r['basis']:<20} clips: {r['clip_count']:<3} keep until {r['retention_until'][:10]}"
            + (f"  HOLD: {r['hold_reason']}" if r["hold_reason"] else "")
            + (f"\n       {'; '.join(r['reasons'][:3])}" if r["reasons"] else ""))
    return "\n".join(lines) + f"\n({p['total']} recordings)"


@cli.command()
@global_options
@click.option("--sort", type=click.Choice(["difficulty", "recorded", "id"]), default="id", show_default=True,
              help="difficulty: the hardest calls first.")
@click.option("--agent", default=None, help="Only calls of this agent (identifier).")
@click.option("--min-difficulty", type=float, default=None, help="Only calls scoring at least this (0-100).")
@click.option("--moment", default=None, help="Only calls with a moment of this kind (overtalk, long_silence, "
              "raised_voice, late_escalation).")
@click.option("--limit", type=int, default=100)
@click.option("--offset", type=int, default=0)
@_run(_recordings_human)
def recordings(sort, agent, min_difficulty, moment, limit, offset):
    """List imported recordings, with their difficulty once analysed."""
    from . import analysis, library

    home = _home()
    with _db(home) as db:
        rows, total = analysis.ranked(db, home, sort=sort, agent=agent, min_difficulty=min_difficulty,
                                      moment=moment, limit=limit, offset=offset)
        for r in rows:
            # the date as purge will judge it: a clip withdrawn since (a recall) no longer keeps
            # the recording for training, so the stored date may be longer than what applies now
            r["retention_until"] = library.retention_due(db, home, r)
    keep = ("id", "sha256", "duration_s", "sr", "channels", "format", "channel_map", "recorded_at", "basis",
            "retention_until", "hold_reason", "clip_count", "imported_at", "difficulty", "reasons", "signals")
    return {"recordings": [{k: r[k] for k in keep} for r in rows], "total": total}


def _analyze_human(p: dict) -> str:
    lines = [f"recording {r['recording_id']}: difficulty {r['difficulty']:.1f}"
             + (f" — {'; '.join(r['reasons'][:3])}" if r["reasons"] else "") for r in p["analyzed"]]
    lines += [f"recording {s['recording_id']}: skipped ({s['why']})" for s in p["skipped"]]
    return "\n".join(lines) or "Nothing to analyse."


@cli.command()
@global_options
@click.argument("recording_ids", nargs=-1, type=int)
@click.option("--all", "all_", is_flag=True, help="Every recording (current analyses are still skipped).")
@click.option("--force", is_flag=True, help="Analyse again even when the analysis is current.")
@click.option("--workers", type=int, default=None, help="Local processes (default: every core).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Run on a Dask distributed cluster, e.g. tcp://10.0.0.5:8786 (or $CLIPKIT_DASK_SCHEDULER).")
@_run(_analyze_human)
def analyze(recording_ids, all_, force, workers, scheduler):
    """Find the difficult moments of calls: overtalk, silences, raised voices; score each call 0-100."""
    from . import analysis

    home = _home()
    bar = None

    def progress(done, total):
        nonlocal bar
        if _opts().get("json_output") or total < 5:
            return
        if bar is None:
            bar = click.progressbar(length=total, label="Analysing", file=sys.stderr)
        bar.pos = done
        bar.render_progress()

    with _db(home) as db:
        out = analysis.analyze_recordings(db, home, list(recording_ids), all_=all_, force=force, workers=workers,
                                          scheduler=scheduler, progress=progress)
    if bar is not None:
        bar.render_finish()
    return out


def _moments_human(p: dict) -> str:
    lines = [f"recording {p['recording_id']} ({p['channels']})"]
    for m in p["moments"]:
        lines.append(f"  {m['start_s']:8.2f}–{m['end_s']:<8.2f} {m['kind']:<16} {m['party'] or '-':<7} "
                     f"strength {m['strength']:g}")
    return "\n".join(lines)


@cli.command()
@global_options
@click.argument("recording_id", type=int)
@click.option("--kind", default=None, help="Only moments of this kind.")
@_run(_moments_human)
def moments(recording_id, kind):
    """The moments found in a call, by time: where to listen first and where to cut."""
    from . import analysis

    home = _home()
    with _db(home) as db:
        return analysis.moments_of(db, recording_id, kind=kind)


# ---------------------------------------------------------------- clips


def _clip_line(c: dict) -> str:
    tags = ", ".join(c["tags"])
    return f"{c['id']:>6}  [{c['status']:<10}] rec {c['recording_id']:<5} {c['start_s']:8.2f}–{c['end_s']:<8.2f} {c['title']}" + (
        f"  #{tags}" if tags else ""
    )


@cli.command()
@global_options
@click.argument("recording_id", type=int)
@click.option("--start", "start_s", type=float, required=True, help="Start in seconds from the call's start.")
@click.option("--end", "end_s", type=float, required=True, help="End in seconds.")
@click.option("--title", required=True)
@click.option("--tag", "tags", multiple=True)
@click.option("--note", default="")
@click.option("--actor", default=None)
@_run(lambda p: f"Created clip {p['id']}")
def clip(recording_id, start_s, end_s, title, tags, note, actor):
    """Cut a clip from a recording."""
    from . import library

    home = _home()
    with _db(home) as db:
        clip_id = library.create_clip(db, home, recording_id, start_s=start_s, end_s=end_s, title=title,
                                      tags=list(tags), note=note, author=actor or _default_actor())
    return {"id": clip_id}


@cli.command()
@global_options
@click.argument("clip_id", type=int)
@click.option("--start", "start_s", type=float, required=True)
@click.option("--end", "end_s", type=float, required=True)
@click.option("--actor", default=None)
@_run(lambda p: f"Clip {p['id']} now {p['start_s']}–{p['end_s']} s (status {p['status']})")
def recut(clip_id, start_s, end_s, actor):
    """Change a clip's range (its rendering becomes stale, approval is lost)."""
    from . import library

    home = _home()
    with _db(home) as db:
        c = library.recut_clip(db, home, clip_id, start_s=start_s, end_s=end_s, actor=actor or _default_actor())
    return {k: c[k] for k in ("id", "start_s", "end_s", "status", "revision")}


@cli.command()
@global_options
@click.argument("clip_id", type=int)
@click.option("--title", default=None)
@click.option("--tag", "tags", multiple=True, help="Replaces all tags when given.")
@click.option("--note", default=None)
@click.option("--actor", default=None)
@_run(lambda p: f"Updated clip {p['id']}")
def edit(clip_id, title, tags, note, actor):
    """Change a clip's title, tags or note."""
    from . import library

    home = _home()
    with _db(home) as db:
        c = library.update_clip(db, clip_id, title=title, note=note, tags=list(tags) if tags else None,
                                actor=actor or _default_actor())
    return {"id": c["id"], "title": c["title"], "tags": c["tags"], "note": c["note"]}


@cli.command()
@global_options
@click.argument("clip_id", type=int)
@click.option("--actor", default=None)
@_run(lambda p: f"Deleted clip {p['deleted']}")
def delete(clip_id, actor):
    """Delete a clip and its rendered audio."""
    from . import library

    home = _home()
    with _db(home) as db:
        library.delete_clip(db, home, clip_id, actor=actor or _default_actor())
    return {"deleted": clip_id}


@cli.command(name="list")
@global_options
@click.option("--tag", default=None, help="Only clips with this tag (matched after normalising).")
@click.option("--search", default=None, help="Word-prefix search over title, note and tags.")
@click.option("--status", default=None, type=click.Choice(["draft", "anonymized", "approved", "withdrawn"]))
@click.option("--recording", "recording_id", type=int, default=None)
@click.option("--limit", type=int, default=50)
@click.option("--offset", type=int, default=0)
@_run(lambda p: "\n".join(_clip_line(c) for c in p["clips"]) + f"\n({len(p['clips'])} of {p['total']} clips)")
def list_(tag, search, status, recording_id, limit, offset):
    """List clips."""
    from . import library

    home = _home()
    with _db(home) as db:
        rows, total = library.list_clips(db, tag=tag, search=search, status=status, recording_id=recording_id,
                                         limit=limit, offset=offset)
    return {"clips": rows, "total": total}


@cli.command()
@global_options
@click.argument("clip_id", type=int)
@_run(lambda p: "\n".join(f"{k:>14}: {v}" for k, v in p.items()))
def show(clip_id):
    """Show one clip."""
    from . import library

    home = _home()
    with _db(home) as db:
        c = library.get_clip(db, clip_id)
    c.pop("tags_text", None)
    c["redactions"] = len(c["redactions"])
    return c


# ---------------------------------------------------------------- anonymize, approve


def _render_human(p: dict) -> str:
    lines = []
    for r in p["rendered"]:
        f = r["figures"] or {}
        before = ", ".join(f"{x:.0f}" if x else "–" for x in f.get("f0_median_before", []))
        after = ", ".join(f"{x:.0f}" if x else "–" for x in f.get("f0_median_after", []))
        state = "already current" if r["skipped"] else "rendered"
        lines.append(f"clip {r['clip_id']}: {state} ({r['method']}); median F0 Hz per channel {before} → {after}")
    return "\n".join(lines)


@cli.command()
@global_options
@click.argument("clip_ids", nargs=-1, type=int, required=True)
@click.option("--method", type=click.Choice(["strong", "pitch"]), default="strong", show_default=True,
              help="strong: keyed pitch + timbre chain (default). pitch: plain keyed pitch shift — WEAKER, "
                   "can largely be undone; export refuses it without --allow-weak.")
@click.option("--redact", "spans", multiple=True,
              help="START-END[:beep|silence], seconds from the clip's start; replaces the clip's spans.")
@click.option("--force", is_flag=True, help="Render again even if a current rendering exists.")
@click.option("--actor", default=None)
@_run(_render_human)
def anonymize(clip_ids, method, spans, force, actor):
    """Render anonymized audio for clips (in parallel on all cores)."""
    from . import rendering

    home = _home()
    actor = actor or _default_actor()
    with _db(home) as db:
        if spans:
            parsed = [rendering.parse_span(s) for s in spans]
            for cid in clip_ids:
                rendering.set_redactions(db, home, cid, parsed, actor=actor)
        bar = None
        if not _opts().get("json_output") and len(clip_ids) > 1:
            bar = click.progressbar(length=len(clip_ids), label="Anonymizing", file=sys.stderr)

        def progress(done, total):
            if bar is not None:
                bar.pos = done
                bar.render_progress()

        results = rendering.render_clips(db, home, list(clip_ids), method=method, force=force, actor=actor,
                                         progress=progress)
        if bar is not None:
            bar.render_finish()
    return {"rendered": results}


@cli.command()
@global_options
@click.argument("clip_id", type=int)
@click.option("--actor", required=True, help="The approving manager (recorded as given).")
@_run(lambda p: f"Clip {p['id']} approved by {p['approved_by']}")
def approve(clip_id, actor):
    """Approve a clip whose current anonymized rendering you have checked."""
    from . import rendering

    home = _home()
    with _db(home) as db:
        c = rendering.approve(db, home, clip_id, actor=actor)
    return {"id": c["id"], "status": c["status"], "approved_by": c["approved_by"]}


# ---------------------------------------------------------------- users (the app's accounts)


@cli.group(name="user", cls=_Group)
@global_options
def user_group():
    """Manage the app's local accounts (roles: manager, trainer, compliance, agent)."""


def _password_from_stdin(flag: bool) -> str | None:
    if not flag:
        return None
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line


@user_group.command(name="add")
@global_options
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(["manager", "trainer", "compliance", "agent"]))
@click.option("--agent", "agent_id", default=None, help="For --role agent: the agent's identifier (employee id).")
@click.option("--admin", is_flag=True, help="For --role manager: may manage accounts in the app.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.option("--actor", default=None)
@_run(lambda p: f"Created user {p['name']} ({p['role']}{', account administrator' if p.get('admin') else ''})"
      + (f"\nPassword (shown once): {p['password']}" if p.get("password") else ""))
def user_add(name, role, agent_id, admin, password_stdin, actor):
    """Create an account; prints a generated password unless --password-stdin."""
    from . import coaching, users
    from .errors import BadInput

    given = _password_from_stdin(password_stdin)
    home = _home()
    with _db(home) as db:
        if role == "agent":
            password = coaching.add_agent_account(db, home, name, agent=agent_id, password=given,
                                                  actor=actor or _default_actor())
        elif agent_id is not None:
            raise BadInput("--agent goes with --role agent only")
        else:
            password = users.add_user(db, name, role=role, password=given, actor=actor or _default_actor(),
                                      admin=admin)
        info = users.get_user_info(db, name)
    out = {"name": info["name"], "role": info["role"], "admin": info["admin"]}
    if given is None:
        out["password"] = password
    return out


@user_group.command(name="passwd")
@global_options
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the new password from the first line of stdin.")
@click.option("--actor", default=None)
@_run(lambda p: f"New password for {p['name']}" + (f" (shown once): {p['password']}" if p.get("password") else " set"))
def user_passwd(name, password_stdin, actor):
    """Set a new password (generated and printed unless --password-stdin); clears a login lock-out."""
    from . import users

    given = _password_from_stdin(password_stdin)
    home = _home()
    with _db(home) as db:
        password = users.set_password(db, name, given, actor=actor or _default_actor())
        info = users.get_user_info(db, name)
    out = {"name": info["name"]}
    if given is None:
        out["password"] = password
    return out


@user_group.command(name="disable")
@global_options
@click.argument("name")
@click.option("--actor", default=None)
@_run(lambda p: f"Disabled user {p['name']}")
def user_disable(name, actor):
    """Disable an account: no more logins, its sessions end at once."""
    return _switch_user(name, actor, enable=False)


@user_group.command(name="enable")
@global_options
@click.argument("name")
@click.option("--actor", default=None)
@_run(lambda p: f"Enabled user {p['name']}")
def user_enable(name, actor):
    """Re-enable a disabled account."""
    return _switch_user(name, actor, enable=True)


def _switch_user(name: str, actor: str | None, *, enable: bool) -> dict:
    from . import users

    home = _home()
    with _db(home) as db:
        info = (users.enable_user if enable else users.disable_user)(db, name, actor=actor or _default_actor())
    return {"name": info["name"], "disabled": info["disabled"]}


@user_group.command(name="admin")
@global_options
@click.argument("name")
@click.option("--revoke", is_flag=True, help="Take the right back (never from the last administrator).")
@click.option("--actor", default=None)
@_run(lambda p: f"{p['name']} {'is' if p['admin'] else 'is no longer'} an account administrator")
def user_admin(name, revoke, actor):
    """Let a manager manage accounts in the app (add, disable, reset passwords, unlock)."""
    from . import users

    home = _home()
    with _db(home) as db:
        info = users.set_admin(db, name, not revoke, actor=actor or _default_actor())
    return {"name": info["name"], "admin": info["admin"]}


@user_group.command(name="unlock")
@global_options
@click.argument("name")
@click.option("--actor", default=None)
@_run(lambda p: f"Unlocked {p['name']} ({p['failures_cleared']} failed login(s) cleared)")
def user_unlock(name, actor):
    """Clear an account's failed logins from every address (lifts a lock-out)."""
    from . import users

    home = _home()
    with _db(home) as db:
        return users.unlock(db, name, actor=actor or _default_actor())


@user_group.command(name="list")
@global_options
@_run(lambda p: "\n".join(
    f"{u['name']:<24} {u['role']:<11} {'DISABLED' if u['disabled'] else 'active':<9} created {u['created_at'][:16]}"
    + ("  admin" if u["admin"] else "")
    for u in p["users"]
) + f"\n({len(p['users'])} users)")
def user_list():
    """List accounts (never their passwords)."""
    from . import users

    home = _home()
    with _db(home) as db:
        return {"users": users.list_users(db)}


# ---------------------------------------------------------------- data-subject requests, erasure, retention


def _request_party_options(f: Callable) -> Callable:
    f = click.option("--agent", default=None, help="The person's employee id, if they are an agent.")(f)
    f = click.option("--caller", default=None, help="The person's phone or customer number, if they are a caller.")(f)
    return f


def _request_line(r: dict) -> str:
    who = r.get("label") or ("(erased)" if r.get("label") is None else "")
    return (f"{r['id']:>5}  {r['kind']:<9} {r['status']:<8} received {r['received'][:10]}  due {r['due']}"
            f"{' (extended)' if r['extended'] else ''}  {who} [{r['party'][:8]}]")


@cli.group(name="request", cls=_Group)
@global_options
def request_group():
    """Data-subject requests: open, extend, close, write an access bundle, erase."""


@request_group.command(name="open")
@global_options
@click.argument("kind", type=click.Choice(["access", "erasure", "objection"]))
@_request_party_options
@click.option("--received", default=None, help="ISO 8601 date/time the request arrived (default: now).")
@click.option("--channel", default=None, help="How it arrived: email, letter, phone, web...")
@click.option("--note", default=None, help="Internal note (cleared if the person is erased).")
@click.option("--actor", default=None)
@_run(lambda p: f"Opened {p['kind']} request {p['id']}, due {p['due']}")
def request_open(kind, caller, agent, received, channel, note, actor):
    """Register a request; it is due one month after receipt."""
    from . import requests

    identifier, role = requests.party_argument(caller=caller, agent=agent)
    home = _home()
    with _db(home) as db:
        return requests.open_request(db, home, kind=kind, identifier=identifier, role=role, received=received,
                                     channel=channel, note=note, actor=actor or _default_actor())


@request_group.command(name="extend")
@global_options
@click.argument("request_id", type=int)
@click.option("--reason", required=True, help="Why more time is needed (tell the person within the first month).")
@click.option("--actor", default=None)
@_run(lambda p: f"Request {p['id']} extended: now due {p['due']}")
def request_extend(request_id, reason, actor):
    """Extend a request's deadline once by two months (Art. 12(3))."""
    from . import requests

    home = _home()
    with _db(home) as db:
        return requests.extend(db, request_id, reason=reason, actor=actor or _default_actor())


@request_group.command(name="close")
@global_options
@click.argument("request_id", type=int)
@click.option("--outcome", required=True, help="What was done, in a sentence.")
@click.option("--actor", default=None)
@_run(lambda p: f"Request {p['id']} closed")
def request_close(request_id, outcome, actor):
    """Record what was done for a request, and close it."""
    from . import requests

    home = _home()
    with _db(home) as db:
        return requests.close(db, request_id, outcome=outcome, actor=actor or _default_actor())


@request_group.command(name="access")
@global_options
@_request_party_options
@click.option("--to", "to", required=True, type=click.Path(file_okay=False),
              help="Folder (outside the data home) to write the bundle into, as a new subfolder.")
@click.option("--request", "request_id", type=int, default=None, help="The access request this answers.")
@click.option("--include-other-party", is_flag=True,
              help="Copy stereo recordings whole, with the other party's voice (normally only the person's own channel).")
@click.option("--actor", default=None)
@_run(lambda p: f"Wrote access bundle {p['path']} ({p['recordings']} recordings, {p['clips']} clips)"
      + (f"; closed request {p['request']}" if p["closed_request"] else ""))
def request_access(caller, agent, to, request_id, include_other_party, actor):
    """Write an access bundle (Art. 15) for one person and close their access request."""
    from . import requests

    identifier, role = requests.party_argument(caller=caller, agent=agent)
    home = _home()
    with _db(home) as db:
        return requests.access_bundle(db, home, identifier=identifier, role=role, to=to, request_id=request_id,
                                      include_other_party=include_other_party, actor=actor or _default_actor())


def _erase_human(p: dict) -> str:
    lines = []
    if p["dry_run"]:
        w = p["would_erase"]
        lines.append(f"Dry run: would erase {w['recordings']} recording(s), {w['clips']} clip(s), "
                     f"{w['renderings']} rendering(s), {w['files']} file(s):")
        for r in p["recordings"]:
            lines.append(f"  recording {r['id']} ({r['recorded_at'][:10]}, as {r['role']}, {r['clips']} clips)"
                         + ("  KEPT: on legal hold" if r["held"] else ""))
    else:
        e = p["erased"]
        lines.append(f"Erased {e['recordings']} recording(s), {e['clips']} clip(s), {e['renderings']} rendering(s), "
                     f"{e['files']} file(s)" + ("; the person is removed" if p["party_removed"] else ""))
    for r in p["refused"]:
        lines.append(f"  REFUSED recording {r['recording']}: {r['reason']}")
    if p["refused"] and not p["dry_run"]:
        lines.append("  the person's record stays while held data remains; rerun this after 'clipkit hold release'")
    exports = p["exports_to_recall"]
    if not exports:
        lines.append("  no earlier export contained their clips")
    else:
        lines.append(f"  {len(exports)} earlier export(s) contained their clips; ask the recipients to delete them:")
        for x in exports:
            lines.append(f"    export {x['export_id']} to {x['recipient'] or '(no recipient given)'} on {x['at'][:10]}: "
                         f"{len(x['files'])} file(s)")
    if p["request_closed"]:
        lines.append(f"  closed request {p['request']}")
    return "\n".join(lines)


@request_group.command(name="erase")
@global_options
@_request_party_options
@click.option("--request", "request_id", type=int, default=None, help="The erasure request this answers.")
@click.option("--dry-run", is_flag=True, help="List what would be erased (an agent: every call they took).")
@click.option("--actor", default=None)
@_run(_erase_human)
def request_erase(caller, agent, request_id, dry_run, actor):
    """Erase a person's recordings, clips, renderings and records (Art. 17). Exit 3 if a hold kept some."""
    from . import erasure, requests

    identifier, _ = requests.party_argument(caller=caller, agent=agent, required=request_id is None)
    home = _home()
    with _db(home) as db:
        out = erasure.erase(db, home, identifier=identifier, request_id=request_id, dry_run=dry_run,
                            actor=actor or _default_actor())
    return out, (3 if out["refused"] and not dry_run else 0)


@cli.command(name="requests")
@global_options
@click.option("--overdue", is_flag=True, help="Only requests past their due date.")
@_run(lambda p: "\n".join(_request_line(r) for r in p["requests"]) + f"\n({len(p['requests'])} requests)")
def requests_(overdue):
    """List data-subject requests with their status: open, due-soon (≤ 7 days), overdue, closed."""
    from . import requests

    home = _home()
    with _db(home) as db:
        rows = requests.listing(db, overdue=overdue)
    return {"requests": rows}


@cli.group(name="hold", cls=_Group)
@global_options
def hold_group():
    """Legal holds: a held recording is never purged or erased."""


@hold_group.command(name="set")
@global_options
@click.argument("recording_id", type=int)
@click.option("--reason", required=True)
@click.option("--actor", default=None)
@_run(lambda p: f"Recording {p['recording']} is on hold")
def hold_set(recording_id, reason, actor):
    """Put a recording on legal hold."""
    return _change_hold(recording_id, reason, actor, hold=True)


@hold_group.command(name="release")
@global_options
@click.argument("recording_id", type=int)
@click.option("--reason", required=True)
@click.option("--actor", default=None)
@_run(lambda p: f"Recording {p['recording']} is no longer on hold" + "".join(
    f"\nErasure request {r} waits for it: run 'clipkit request erase --request {r}'" for r in p["erasure_requests_waiting"]))
def hold_release(recording_id, reason, actor):
    """Release a legal hold (purge and erasure may then delete the recording)."""
    return _change_hold(recording_id, reason, actor, hold=False)


def _change_hold(recording_id: int, reason: str, actor: str | None, *, hold: bool) -> dict:
    from . import retention

    home = _home()
    with _db(home) as db:
        change = retention.set_hold if hold else retention.release_hold
        return change(db, recording_id, reason=reason, actor=actor or _default_actor())


@cli.command()
@global_options
@click.option("--dry-run", is_flag=True, help="List what would be deleted; change nothing.")
@click.option("--now", default=None, help="Judge retention at this ISO 8601 time (default: now).")
@click.option("--actor", default=None)
@_run(lambda p: f"{'Would delete' if p['dry_run'] else 'Deleted'} {len(p['deleted'])} recording(s) past retention, "
      f"{p['clips']} clip(s), {p['renderings']} rendering(s)"
      + (f"; kept on hold: {', '.join(map(str, p['kept_on_hold']))}" if p["kept_on_hold"] else "")
      + "".join(f"\n  recording {d['id']} (call of {d['recorded_at'][:10]}, keep until {d['retention_until'][:10]})"
                for d in p["deleted"]))
def purge(dry_run, now, actor):
    """Delete recordings past their retention date (not on hold), with clips, renderings and files."""
    from . import retention

    home = _home()
    with _db(home) as db:
        return retention.purge(db, home, now=now, dry_run=dry_run, actor=actor or _default_actor())


# ---------------------------------------------------------------- consent, objections, export, log, recalls


def _party_options(f: Callable) -> Callable:
    f = click.option("--agent", default=None, help="The agent's identifier (employee id).")(f)
    f = click.option("--caller", default=None, help="The caller's identifier (phone or customer number).")(f)
    return f


def _one_party(caller: str | None, agent: str | None) -> str:
    if (caller is None) == (agent is None):
        raise click.UsageError("give exactly one of --caller ID or --agent ID")
    return caller if caller is not None else agent


_CHANNEL_CHOICE = click.Choice(["in_call", "phone", "email", "letter", "web"])
_PURPOSE_CHOICE = click.Choice(["training", "quality", "dispute"])


def _event_human(p: dict) -> str:
    s = p["status"]
    line = (f"Recorded {p['event'].replace('_', ' ')} for {p['purpose']} ({p['label']}, party {p['party_ref']}); "
            f"now: consent {s['consent']}, objection {s['objection']}")
    if s.get("pending_at"):
        line += f" (a change takes effect {s['pending_at'][:16]})"
    r = p.get("recall")
    if r and r["clips"]:
        line += f"\nWithdrew {len(r['clips'])} clip(s): {', '.join(map(str, r['clips']))}"
        if r["exports"]:
            line += f"\n{len(r['exports'])} earlier export(s) contained them: run 'clipkit recalls'"
    if p.get("warning"):
        line += f"\nWARNING: {p['warning']}"
    return line


def _record_event(identifier, *, purpose, event, channel, note, actor, effective, evidence=None) -> dict:
    from . import consent

    home = _home()
    with _db(home) as db:
        return consent.record_for(
            db, home, identifier, purpose=purpose, event=event, actor=actor or _default_actor(),
            channel=channel, note=note, effective=effective,
            evidence=consent.parse_evidence(evidence) if evidence else None,
        )


@cli.group(name="consent", cls=_Group)
@global_options
def consent_group():
    """Record consent given or withdrawn; rebuild the status table."""


def _consent_command(name: str, event: str, doc: str):
    @consent_group.command(name=name)
    @global_options
    @_party_options
    @click.option("--purpose", type=_PURPOSE_CHOICE, required=True)
    @click.option("--channel", type=_CHANNEL_CHOICE, default=None, help="How it reached us.")
    @click.option("--note", default=None, help="Free text, kept in the register (never in the log).")
    @click.option("--actor", default=None, help="Who records it.")
    @click.option("--effective", default=None, help="ISO 8601 time it takes effect (default: now).")
    @_run(_event_human)
    def command(caller, agent, purpose, channel, note, actor, effective):
        return _record_event(_one_party(caller, agent), purpose=purpose, event=event, channel=channel, note=note,
                             actor=actor, effective=effective)

    command.__doc__ = doc
    return command


consent_grant = _consent_command("grant", "consent_given", "Record that a caller or agent gave consent for a purpose.")
consent_withdraw = _consent_command(
    "withdraw", "consent_withdrawn",
    "Record that consent was withdrawn (for training: every clip they are heard in is withdrawn at once).")


@consent_group.command(name="rebuild")
@global_options
@click.option("--actor", default=None)
@_run(lambda p: f"Rebuilt the consent status from the history ({p['rows']} party/purpose rows)")
def consent_rebuild(actor):
    """Recompute the current-status table from the append-only history."""
    from . import consent

    home = _home()
    with _db(home) as db:
        return {"rows": consent.rebuild(db, actor=actor or _default_actor())}


@cli.command(name="object")
@global_options
@_party_options
@click.option("--purpose", type=_PURPOSE_CHOICE, default="training", show_default=True)
@click.option("--evidence", default=None, metavar="RECORDING_ID@SECONDS",
              help="Where in a call the person objected, e.g. 12@33.5.")
@click.option("--withdraw", is_flag=True, help="The person lifts their objection (clips stay withdrawn).")
@click.option("--channel", type=_CHANNEL_CHOICE, default=None, help="How it reached us.")
@click.option("--note", default=None, help="Free text, kept in the register (never in the log).")
@click.option("--actor", default=None, help="Who records it.")
@click.option("--effective", default=None, help="ISO 8601 time it takes effect (default: now).")
@_run(_event_human)
def object_(caller, agent, purpose, evidence, withdraw, channel, note, actor, effective):
    """Record an objection (for training: every clip they are heard in is withdrawn at once)."""
    return _record_event(_one_party(caller, agent), purpose=purpose,
                         event="objection_withdrawn" if withdraw else "objection_made", channel=channel,
                         note=note, actor=actor, effective=effective, evidence=evidence)


def _status_human(p: dict) -> str:
    lines = [f"Party {p['party']} ({p['label']})"]
    for purpose, s in p["status"].items():
        extra = f"  (change pending from {s['pending_at'][:16]})" if s.get("pending_at") else ""
        lines.append(f"  {purpose:<9} consent {s['consent']:<9} objection {s['objection']}{extra}")
    for e in p["history"]:
        ev = e["evidence"]
        where = f" evidence rec {ev['recording_id']}@{ev['seconds']:g}s" if ev else ""
        lines.append(f"  #{e['seq']:<5} {e['effective_at'][:16]} {e['purpose']:<9} {e['event']:<20} "
                     f"via {e['channel'] or '-':<8} by {e['recorded_by']}{where}" + (f"  {e['note']}" if e["note"] else ""))
    return "\n".join(lines)


@cli.group(name="party", cls=_Group)
@global_options
def party_group():
    """Parties (callers and agents): name an agent, join two parties that are one person."""


def _merge_human(p: dict) -> str:
    line = (f"Merged party {p['merged']} into {p['party']} ({p['label']}): {len(p['recordings'])} recording(s), "
            f"{p['events']} consent/objection event(s), {p['requests']} request(s) moved")
    r = p.get("recall")
    if r and r["clips"]:
        line += f"\nWithdrew {len(r['clips'])} clip(s) under the joined objection: {', '.join(map(str, r['clips']))}"
        if r["exports"]:
            line += f"\n{len(r['exports'])} earlier export(s) contained them: run 'clipkit recalls'"
    return line


@party_group.command(name="label")
@global_options
@click.option("--agent", "agent_id", required=True, help="The agent's identifier (employee id).")
@click.option("--name", required=True, help='How managers see the agent, e.g. "Sanne (team B)".')
@click.option("--actor", default=None)
@_run(lambda p: f"Agent {p['label']} is now shown as {p['name']}")
def party_label(agent_id, name, actor):
    """Give an agent a display name (agents are staff; callers are never named)."""
    from . import coaching

    home = _home()
    with _db(home) as db:
        return coaching.label_agent(db, home, agent_id, name, actor=actor or _default_actor())


@party_group.command(name="merge")
@global_options
@click.argument("keep_ref")
@click.argument("merge_ref")
@click.option("--reason", required=True, help="Why they are one person (kept as a note, cleared at erasure).")
@click.option("--actor", default=None, help="Who merges.")
@_run(_merge_human)
def party_merge(keep_ref, merge_ref, reason, actor):
    """Join party MERGE_REF into KEEP_REF: history, recordings and requests follow; objections apply at once."""
    from . import merge

    home = _home()
    with _db(home) as db:
        return merge.merge(db, home, into_ref=keep_ref, from_ref=merge_ref, reason=reason,
                           actor=actor or _default_actor())


@cli.command(name="status")
@global_options
@_party_options
@_run(_status_human)
def status_(caller, agent):
    """Show a party's consent and objection status per purpose, and the full history."""
    from . import consent

    identifier = _one_party(caller, agent)
    home = _home()
    with _db(home) as db:
        party = consent.resolve_party(db, home, identifier, create=False)
        return {"party": party["ref"], "label": party["label"], "status": consent.current(db, party["ref"]),
                "history": consent.history(db, party["ref"])}


def _voices_human(p: dict) -> str:
    head = f"Caller voice: {p['caller_voice']}"
    if p.get("changed"):
        head += (f" (changed; {p['stale_renderings']} clip(s) rendered under the old setting must be anonymized "
                 "and approved again)")
    return head + "\n" + p["meaning"]


@cli.command(name="voices")
@global_options
@click.option("--caller", "mode", type=click.Choice(["per-caller", "per-clip"]), default=None,
              help="Give each caller one voice in every clip (per-caller, default) or a new voice in each clip "
                   "(per-clip: two clips of one caller cannot be linked by voice).")
@click.option("--actor", default=None)
@_run(_voices_human)
def voices_(mode, actor):
    """Show or set how callers' anonymized voices are keyed (one per caller, or one per clip)."""
    from . import pseudovoices

    home = _home()
    with _db(home) as db:
        if mode is None:
            out = {"caller_voice": pseudovoices.caller_voice(db), "changed": False, "stale_renderings": 0}
        else:
            out = pseudovoices.set_caller_voice(db, mode, actor=actor or _default_actor())
    return dict(out, meaning=pseudovoices.describe(out["caller_voice"]))


def _export_human(p: dict) -> str:
    lines = []
    if p["exported"]:
        lines.append(f"Exported {len(p['exported'])} clip(s) to {p['path']}")
        lines += [f"  clip {e['clip_id']} -> {e['file']}  sha256 {e['sha256'][:16]}…" for e in p["exported"]]
    for r in p["refused"]:
        lines.append(f"REFUSED clip {r['clip_id']}: " + "; ".join(x["message"] for x in r["reasons"]))
    if p["withheld"]:
        lines.append(f"Withheld (--all-or-nothing): clips {', '.join(map(str, p['withheld']))}; nothing was exported")
    lines.append(f"Export {p['export_id']}: {p['decision']} (policy {p['policy_version']}; see 'clipkit log')")
    return "\n".join(lines)


@cli.command(name="export")
@global_options
@click.argument("clip_ids", nargs=-1, type=int, required=True)
@click.option("--to", "to", required=True, type=click.Path(file_okay=False), help="Folder outside the data home.")
@click.option("--actor", required=True, help="Who exports (recorded as given).")
@click.option("--recipient", default=None, help="Who receives the files.")
@click.option("--all-or-nothing", is_flag=True, help="Export nothing if any clip is refused.")
@click.option("--allow-weak", is_flag=True, help="Accept clips anonymized with the weak 'pitch' method.")
@_run(_export_human)
def export_cmd(clip_ids, to, actor, recipient, all_or_nothing, allow_weak):
    """Export approved anonymized clips (exit 3 when any clip is refused; every attempt is logged)."""
    from . import export

    home = _home()
    with _db(home) as db:
        out = export.export_clips(db, home, list(clip_ids), to=to, actor=actor, recipient=recipient,
                                  all_or_nothing=all_or_nothing, allow_weak=allow_weak)
    return out, (3 if out["refused"] or out["withheld"] else 0)


def _log_filters(f: Callable) -> Callable:
    f = click.option("--refused", is_flag=True, help="Only refused or partly refused export attempts.")(f)
    f = click.option("--kind", default=None, help="Event kind or prefix, e.g. export or consent.objection_made.")(f)
    f = click.option("--actor", default=None)(f)
    f = click.option("--since", default=None, help="ISO 8601 date/time.")(f)
    return f


def _log_rows(since, actor, kind, refused, limit=None):
    from . import auditlog
    from .db import utc_iso

    since = utc_iso(since, name="--since")
    from . import notes

    from . import logtext, parties

    home = _home()
    with _db(home) as db:
        rows, total = auditlog.entries(db, since=since, actor=actor, kind=kind, refused=refused, limit=limit)
        rows = notes.resolve(db, rows)
        return logtext.with_sentences(rows, parties.labels(db, logtext.refs_in(rows))), total


@cli.group(name="log", cls=_Group, invoke_without_command=True)
@global_options
@_log_filters
@click.option("--limit", type=int, default=None, help="At most this many entries (oldest first).")
@click.pass_context
def log_group(ctx, since, actor, kind, refused, limit):
    """List the tamper-evident log; 'log verify', 'log head' and 'log csv' check and export it."""
    if ctx.invoked_subcommand is None:
        _log_list(since, actor, kind, refused, limit)


@_run(lambda p: "\n".join(
    f"{e['seq']:>6}  {e['time'][:19]}  {e['what']}" for e in p["entries"]
) + f"\n({len(p['entries'])} of {p['total']} entries)")
def _log_list(since, actor, kind, refused, limit):
    rows, total = _log_rows(since, actor, kind, refused, limit)
    return {"entries": [{"seq": r["seq"], "time": r["at"], "kind": r["kind"], "actor": r["actor"],
                         "decision": r["decision"], "what": r["what"], "data": r["data"], "notes": r["notes"],
                         "hash": r["hash"]}
                        for r in rows],
            "total": total}


@log_group.command(name="verify")
@global_options
@click.option("--head", "head_text", default=None, metavar="SEQ:HASH",
              help="A head written down earlier ('clipkit log head'); also catches rewritten or cut-off chains.")
@_run(lambda p: f"Log intact: {p['entries']} entries" if p["ok"] else
      f"LOG TAMPERED: first bad entry {p['first_bad_seq']} ({p.get('reason', '')}); {p['entries']} entries checked")
def log_verify(head_text):
    """Recompute the hash chain (exit 1 if it is broken)."""
    from . import auditlog

    home = _home()
    with _db(home) as db:
        out = auditlog.verify(db, head_text=head_text)
    return out, (0 if out["ok"] else 1)


@log_group.command(name="head")
@global_options
@_run(lambda p: p["head"])
def log_head():
    """Print the newest entry as SEQ:HASH, to write down or store elsewhere."""
    from . import auditlog

    home = _home()
    with _db(home) as db:
        return auditlog.head(db)


@log_group.command(name="csv")
@global_options
@_log_filters
@click.option("--out", "out_path", default=None, type=click.Path(dir_okay=False), help="Write to this file.")
@_run(lambda p: p["csv"].rstrip("\n") if "csv" in p else f"Wrote {p['entries']} entries to {p['out']}")
def log_csv(since, actor, kind, refused, out_path):
    """The log as CSV for auditors (stdout, or --out FILE)."""
    from pathlib import Path

    from . import auditlog
    from .home import write_atomic

    rows, _ = _log_rows(since, actor, kind, refused)
    text = auditlog.to_csv(rows)
    if out_path is None:
        return {"entries": len(rows), "csv": text}
    write_atomic(Path(out_path), text.encode())
    return {"entries": len(rows), "out": out_path}


def _recalls_human(p: dict) -> str:
    if not p["recalls"]:
        return "No earlier export contains a withdrawn clip."
    lines = []
    for r in p["recalls"]:
        lines.append(f"Export {r['export_id']} on {r['at'][:16]} by {r['actor']} to {r['recipient'] or '(no recipient)'}:")
        lines += [f"  clip {f['clip_id']}: {f['file']}  sha256 {f['sha256']}  ({f.get('reason_text') or 'withdrawn'})"
                  for f in r["files"]]
    return "\n".join(lines)


# ---------------------------------------------------------------- coaching reviews


def _review_line(r: dict) -> str:
    return (f"{r['id']:>5}  {r['month']}  call {r['recording_id']:<5} {r['agent_name']:<24} {r['status']:<12} "
            f"{r['why']:<9} comments {r.get('comments', len(r.get('comments') or [])):<3} by {r['reviewer']}")


def _review_human(p: dict) -> str:
    lines = [_review_line(dict(p, comments=len(p.get("comments") or [])))]
    for c in p.get("comments") or []:
        lines.append(f"       {c['at_s']:8.2f} s  {c['author']}: {c['text']}")
    if p.get("scores"):
        lines.append("       scores: " + ", ".join(f"{k} {v}" for k, v in p["scores"].items()))
    if p.get("reply"):
        lines.append(f"       reply: {p['reply']}")
    if p.get("audio_gone"):
        lines.append("       the call's audio is gone (erased or purged): the review cannot be played")
    return "\n".join(lines)


@cli.group(name="review", cls=_Group)
@global_options
def review_group():
    """One-on-one coaching: sample calls per agent, comment, score, share, acknowledge."""


@review_group.command(name="sample")
@global_options
@click.option("--month", required=True, metavar="YYYY-MM")
@click.option("--per-agent", type=int, required=True, help="Reviews each agent should have for the month.")
@click.option("--difficult-share", type=float, default=0.5, show_default=True,
              help="Share drawn from the agent's most difficult calls (when analysed); the rest at random.")
@click.option("--seed", type=int, default=None, help="Make the random part reproducible.")
@click.option("--actor", default=None)
@_run(lambda p: "\n".join(
    [f"{a['name']}: {a['existing']} existing + {a['created']} new of {a['target']} ({a['calls']} calls)"
     + (f", {a['short']} short: not enough eligible calls" if a["short"] else "") for a in p["per_agent"].values()]
    + [f"  skipped call {s['recording_id']}: {s['why']}" for s in p["skipped"]]) or "No calls that month.")
def review_sample(month, per_agent, difficult_share, seed, actor):
    """Draft reviews so every agent with calls in MONTH has N (tops up, never duplicates)."""
    from . import coaching

    home = _home()
    with _db(home) as db:
        return coaching.sample(db, home, month=month, per_agent=per_agent, difficult_share=difficult_share,
                               seed=seed, actor=actor or _default_actor())


@review_group.command(name="add")
@global_options
@click.argument("recording_id", type=int)
@click.option("--start", "start_s", type=float, default=None, help="Review only from here (seconds in the call).")
@click.option("--end", "end_s", type=float, default=None)
@click.option("--reviewer", default=None)
@_run(_review_human)
def review_add(recording_id, start_s, end_s, reviewer):
    """A draft review of one call for the agent who took it."""
    from . import coaching

    home = _home()
    with _db(home) as db:
        return coaching.create_review(db, home, recording_id, start_s=start_s, end_s=end_s,
                                      reviewer=reviewer or _default_actor())


@review_group.command(name="comment")
@global_options
@click.argument("review_id", type=int)
@click.option("--at", "at_s", type=float, required=True, help="Seconds in the recording, inside the reviewed range.")
@click.option("--text", required=True)
@click.option("--actor", default=None)
@_run(_review_human)
def review_comment(review_id, at_s, text, actor):
    """Add a comment at a moment of the call."""
    from . import coaching

    home = _home()
    with _db(home) as db:
        return coaching.comment(db, review_id, at_s=at_s, text=text, author=actor or _default_actor())


@review_group.command(name="score")
@global_options
@click.argument("review_id", type=int)
@click.option("--set", "sets", multiple=True, required=True, metavar="CRITERION=VALUE")
@click.option("--note", default=None, help="The overall note.")
@click.option("--actor", default=None)
@_run(_review_human)
def review_score(review_id, sets, note, actor):
    """Fill the scorecard (criteria and scale from config.json)."""
    from . import coaching
    from .errors import BadInput

    values = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"--set {item!r} must be CRITERION=VALUE, e.g. tone=4")
        values[key.strip()] = value.strip()
    home = _home()
    with _db(home) as db:
        return coaching.score(db, home, review_id, values, actor=actor or _default_actor(), overall_note=note)


@review_group.command(name="share")
@global_options
@click.argument("review_id", type=int)
@click.option("--actor", default=None)
@_run(_review_human)
def review_share(review_id, actor):
    """Share a review with its agent (exit 3, logged, when the policy refuses)."""
    from . import coaching

    home = _home()
    with _db(home) as db:
        return coaching.share(db, home, review_id, actor=actor or _default_actor())


@review_group.command(name="close")
@global_options
@click.argument("review_id", type=int)
@click.option("--actor", default=None)
@_run(_review_human)
def review_close(review_id, actor):
    """Close a review."""
    from . import coaching

    home = _home()
    with _db(home) as db:
        return coaching.close(db, review_id, actor=actor or _default_actor())


def _as_user(db, name: str):
    """A session for the named account, so a command does exactly what that user could in the app."""
    from . import users
    from .errors import NotFound

    try:
        return users.start_session(db, name, source="cli")
    except NotFound:
        raise NotFound(f"no active user named {name!r}") from None


@review_group.command(name="ack")
@global_options
@click.argument("review_id", type=int)
@click.option("--as", "as_user", required=True, help="The agent's account.")
@click.option("--reply", default=None)
@_run(_review_human)
def review_ack(review_id, as_user, reply):
    """The agent acknowledges a shared review, with a reply."""
    from . import access, users

    home = _home()
    with _db(home) as db:
        user = _as_user(db, as_user)
        try:
            return access.acknowledge_review(db, user, review_id, reply=reply)
        finally:
            users.logout(db, user)


@review_group.command(name="audio")
@global_options
@click.argument("review_id", type=int)
@click.option("--as", "as_user", required=True, help="Write what this account would hear in the app.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False))
@_run(lambda p: f"Wrote {p['out']} ({p['bytes']} bytes) as {p['as']} would hear it")
def review_audio(review_id, as_user, out_path):
    """Write a review's audio exactly as USER hears it (exit 3 with the reason when they may not)."""
    from . import access, audio, coaching, users

    home = _home()
    with _db(home) as db:
        user = _as_user(db, as_user)
        try:
            data = audio.without_nonce(access.review_audio(db, home, user, review_id))
        finally:
            users.logout(db, user)
    out = coaching.write_wav(data, out_path)
    return {"review": review_id, "as": as_user, "out": str(out), "bytes": len(data)}


@cli.command(name="reviews")
@global_options
@click.option("--agent", "agent_id", default=None, help="Only this agent's (identifier).")
@click.option("--status", default=None, type=click.Choice(["draft", "shared", "acknowledged", "closed"]))
@click.option("--month", default=None, metavar="YYYY-MM")
@_run(lambda p: "\n".join(_review_line(r) for r in p["reviews"]) + f"\n({len(p['reviews'])} reviews)")
def reviews_cmd(agent_id, status, month):
    """List coaching reviews."""
    from . import coaching, parties
    from .errors import NotFound

    home = _home()
    with _db(home) as db:
        ref = None
        if agent_id is not None:
            try:
                ref = parties.lookup(db, home.secret(), agent_id, region=home.config["phone_region"])["ref"]
            except NotFound:
                return {"reviews": []}
        return {"reviews": coaching.listing(db, agent_ref=ref, status=status, month=month)}


@cli.group(name="recalls", cls=_Group, invoke_without_command=True)
@global_options
@click.pass_context
def recalls_group(ctx):
    """Earlier exports containing clips withdrawn since: ask their recipients to delete those files.

    'clipkit recalls done EXPORT_ID' records that the recipient confirmed the deletion.
    """
    if ctx.invoked_subcommand is None:
        _recalls_list()


@_run(_recalls_human)
def _recalls_list():
    from . import withdrawal

    home = _home()
    with _db(home) as db:
        return {"recalls": withdrawal.recalls(db)}


@recalls_group.command(name="done")
@global_options
@click.argument("export_id")
@click.option("--note", default=None, help="How the recipient confirmed (kept as an erasable note).")
@click.option("--actor", default=None)
@_run(lambda p: f"Recall of {p['export_id']} marked done ({p['files']} file(s) confirmed deleted)")
def recalls_done(export_id, note, actor):
    """Record that the recipient of an export confirmed deleting its recalled files."""
    from . import withdrawal

    home = _home()
    with _db(home) as db:
        return withdrawal.mark_recall_done(db, export_id, actor=actor or _default_actor(), note=note)


def main() -> None:
    # sqlite-utils imports pandas when it is installed (Streamlit brings it) only to map
    # pandas.Timestamp columns; no command uses that, and the import costs seconds on every
    # start (a cron job, a script looping over ids). Keep it out of the command-line process.
    sys.modules.setdefault("pandas", None)  # type: ignore[assignment]
    cli(prog_name="clipkit")


if __name__ == "__main__":
    main()
