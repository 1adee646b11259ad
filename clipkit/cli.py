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
    from . import db

    return db.connect(home)


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


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except OSError as e:  # a disk or permission problem outside our typed errors
            _fail("os_error", f"{getattr(e, 'filename', '') or ''} {e.strerror or e}".strip(), 1)


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
    from .home import init_home

    home, created = init_home(_opts().get("home"))
    return {"home": str(home.root), "created": created}


# ---------------------------------------------------------------- import


def _import_human(p: dict) -> str:
    lines = []
    for r in p["recordings"]:
        state = "duplicate of" if r["duplicate"] else "imported as"
        lines.append(f"{r['path']}: {state} recording {r['id']} ({r['duration_s']:.1f} s, {r['channels']} ch)")
    for e in p["errors"]:
        lines.append(f"{e['path']}: ERROR {e['error']}")
    return "\n".join(lines)


@cli.command(name="import")
@global_options
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--caller", required=True, help="Caller's identifier (phone or customer number).")
@click.option("--agent", required=True, help="Agent's identifier (employee id).")
@click.option("--channels", default=None, help="caller,agent | agent,caller | mixed | caller=N,agent=M")
@click.option("--recorded-at", default=None, help="ISO 8601 time of the call (default: now).")
@click.option("--basis", type=click.Choice(["contract", "legitimate_interest", "consent"]), default=None,
              help="Legal basis of the recording (default from config: legitimate_interest).")
@click.option("--notice", default=None, help="The notice the caller heard, e.g. 'calls are recorded for quality'.")
@click.option("--actor", default=None, help="Who imports (recorded as given).")
@click.option("--allow-erased-party", is_flag=True, help="Import even if a party was erased at their request.")
@_run(_import_human)
def import_(paths, caller, agent, channels, recorded_at, basis, notice, actor, allow_erased_party):
    """Import call recordings (WAV, FLAC, OGG, MP3; 8–48 kHz; mono or stereo)."""
    from . import library

    home = _home()
    with _db(home) as db:
        results = library.import_recordings(
            db, home, list(paths), caller=caller, agent=agent, channels=channels, recorded_at=recorded_at,
            basis=basis, notice=notice, actor=actor or _default_actor(), allow_suppressed=allow_erased_party,
        )
    payload = {
        "recordings": [r.as_dict() for r in results if not r.error],
        "errors": [r.as_dict() for r in results if r.error],
    }
    return payload, (1 if payload["errors"] else 0)


@cli.command()
@global_options
@click.option("--limit", type=int, default=100)
@click.option("--offset", type=int, default=0)
@_run(lambda p: "\n".join(
    f"{r['id']:>5}  {r['recorded_at'][:16]}  {r['duration_s']:7.1f} s  {r['channels']} ch  "
    f"{r['channel_map']:<18} {r['basis']:<20} clips: {r['clip_count']}" for r in p["recordings"]
) + f"\n({p['total']} recordings)")
def recordings(limit, offset):
    """List imported recordings."""
    from . import library

    home = _home()
    with _db(home) as db:
        rows, total = library.list_recordings(db, limit=limit, offset=offset)
    keep = ("id", "sha256", "duration_s", "sr", "channels", "format", "channel_map", "recorded_at", "basis",
            "retention_until", "hold_reason", "clip_count", "imported_at")
    return {"recordings": [{k: r[k] for k in keep} for r in rows], "total": total}


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


def main() -> None:
    cli(prog_name="clipkit")


if __name__ == "__main__":
    main()
