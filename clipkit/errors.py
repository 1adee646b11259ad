"""The exceptions clipkit raises.

Every error derives from :class:`ClipkitError`, so a caller (the CLI, a
Streamlit page) can catch one class and show ``str(error)`` as a plain
message. Each class carries a stable ``code`` for JSON output and the exit
code the CLI uses for it.
"""

from __future__ import annotations


class ClipkitError(Exception):
    """Root of all clipkit errors; ``str(e)`` is a complete, plain sentence."""

    code = "error"
    exit_code = 1


class BadInput(ClipkitError):
    """A value given by the user is outside what is allowed; the message names it."""

    code = "bad_input"


class BadAudio(BadInput):
    """An audio file or signal cannot be used (corrupt, empty, NaN, too long...)."""

    code = "bad_audio"


class NotFound(ClipkitError):
    """A recording, clip, party or other object does not exist."""

    code = "not_found"


class HomeMissing(ClipkitError):
    """The data home does not exist; only ``clipkit init`` creates one."""

    code = "home_missing"


class KeyFileError(ClipkitError):
    """The installation's secret key is missing or unreadable.

    Never answered by silently creating a new key: a new key would change
    every anonymized voice and every pseudonym.
    """

    code = "key_file"


class DatabaseBusy(ClipkitError):
    """Another process holds the database lock for longer than we wait."""

    code = "database_busy"


class DiskFull(ClipkitError):
    """The disk holding the data home (or an export folder) has no room left; nothing was changed."""

    code = "disk_full"


class Forbidden(ClipkitError):
    """The authenticated user's role does not allow this action."""

    code = "forbidden"


class PolicyRefusal(ClipkitError):
    """The privacy policy refuses the action (export, erasure of a held recording...).

    The refusal has already been written to the log when this is raised.
    """

    code = "refused"
    exit_code = 3

    def __init__(self, message: str, *, reasons: list | None = None):
        super().__init__(message)
        self.reasons = reasons or []
