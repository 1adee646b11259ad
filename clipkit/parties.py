"""Parties (callers and agents): canonical identifiers, keyed pseudonyms, suppression.

The database never holds a raw phone or customer number. An identifier is
canonicalised ("06-12345678" and "+31 6 1234 5678" are one caller), then
turned into a keyed pseudonym ``HMAC(installation key, canonical id)``. History
and log tables refer to a party by an opaque random ``ref``; the ``parties``
row is the only thing that ties a ref to a pseudonym, so erasing that row
leaves nothing that resolves to the person. A keyed suppression entry remains
so a later import of an erased person's calls is flagged.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata

import phonenumbers
from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from .errors import BadInput, NotFound

ROLES = ("caller", "agent")

migrations = Migrations("clipkit.parties")


@migrations()
def m001_parties(db: Database) -> None:
    db["parties"].create(
        {"ref": str, "pseudonym": str, "label": str, "created_at": str},
        pk="ref",
    )
    db["parties"].create_index(["pseudonym"], unique=True)
    # keyed hashes of erased parties' pseudonyms; nothing else is kept about them
    db["suppressed"].create({"token": str, "erased_at": str}, pk="token")


def canonical_identifier(identifier: str, *, region: str = "NL") -> str:
    """Canonical form of an external identifier.

    Strings that ``phonenumbers`` parses as a *valid* number become E.164
    (``+31612345678``); anything else (customer numbers, employee ids) is
    NFKC-normalised, trimmed, case-folded and has inner white space collapsed.

    Raises
    ------
    BadInput
        If the identifier is empty.
    """
    if identifier is None or not str(identifier).strip():
        raise BadInput("a party identifier must not be empty")
    text = unicodedata.normalize("NFKC", str(identifier)).strip()
    if re.fullmatch(r"[+0-9()\-. /]{6,}", text):
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            number = None
        if number is not None and phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return " ".join(text.casefold().split())


def pseudonym(secret: bytes, canonical: str) -> str:
    """Keyed pseudonym of a canonical identifier (hex, 64 characters)."""
    return hmac.new(secret, b"party:" + canonical.encode(), hashlib.sha256).hexdigest()


def suppression_token(secret: bytes, pseudo: str) -> str:
    # a second, differently-labelled HMAC: the token cannot be joined to the
    # pseudonyms in old backups or exports
    return hmac.new(secret, b"suppress:" + pseudo.encode(), hashlib.sha256).hexdigest()


def display_label(canonical: str) -> str:
    """A label that lets staff recognise a party without storing the identifier.

    Phone numbers keep only their last two digits; other ids their first two
    characters. Enough to tell two parties on a screen apart, not to find one.
    """
    if canonical.startswith("+") and canonical[1:].isdigit():
        return "phone ••" + canonical[-2:]
    return canonical[:2] + "…"


def lookup(db: Database, secret: bytes, identifier: str, *, region: str = "NL") -> dict:
    """The party row for an identifier.

    Raises
    ------
    NotFound
        If no party has that identifier.
    """
    pseudo = pseudonym(secret, canonical_identifier(identifier, region=region))
    rows = list(db["parties"].rows_where("pseudonym = ?", [pseudo], limit=1))
    if not rows:
        raise NotFound(f"no party with identifier {identifier!r} is known")
    return rows[0]


def is_suppressed(db: Database, secret: bytes, identifier: str, *, region: str = "NL") -> bool:
    pseudo = pseudonym(secret, canonical_identifier(identifier, region=region))
    return db["suppressed"].count_where("token = ?", [suppression_token(secret, pseudo)]) > 0


def ensure(db: Database, secret: bytes, identifier: str, *, region: str = "NL", now: str) -> dict:
    """The party row for an identifier, created if new. Call inside a transaction."""
    canonical = canonical_identifier(identifier, region=region)
    pseudo = pseudonym(secret, canonical)
    rows = list(db["parties"].rows_where("pseudonym = ?", [pseudo], limit=1))
    if rows:
        return rows[0]
    row = {"ref": secrets.token_hex(12), "pseudonym": pseudo, "label": display_label(canonical), "created_at": now}
    db["parties"].insert(row)
    return row


def get(db: Database, ref: str) -> dict:
    rows = list(db["parties"].rows_where("ref = ?", [ref], limit=1))
    if not rows:
        raise NotFound(f"no party with reference {ref!r}")
    return rows[0]
