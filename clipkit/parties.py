"""Parties (callers and agents): canonical identifiers, keyed pseudonyms, suppression.

The database never holds a raw phone or customer number. An identifier is
canonicalised ("06-12345678" and "+31 6 1234 5678" are one caller), then
turned into a keyed pseudonym ``HMAC(installation key, canonical id)``. History
and log tables refer to a party by an opaque random ``ref``; the ``parties``
row is the only thing that ties a ref to a pseudonym, so erasing that row
leaves nothing that resolves to the person. A keyed suppression entry remains
so a later import of an erased person's calls is flagged.

Identifiers arrive copied from e-mail, CRM screens and spreadsheets, with
invisible marks, odd dashes and other scripts' digits in them; an objection
that misses its caller because of a bidi mark is a broken promise, so
:func:`canonical_identifier` cleans all of that away first. When one person
still ends up as two parties (a foreign number in its national format),
:mod:`clipkit.merge` joins them: the merged party's pseudonym becomes an
alias (``party_aliases``) of the one it joined.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Iterable

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


@migrations()
def m002_aliases(db: Database) -> None:
    # pseudonyms of parties merged into another one (``clipkit party merge``):
    # an identifier of the merged party still finds the party it joined
    db.execute(
        """
        CREATE TABLE party_aliases (
            pseudonym TEXT PRIMARY KEY,
            ref TEXT NOT NULL,          -- the party it now resolves to
            merged_at TEXT NOT NULL
        ) WITHOUT ROWID
        """
    )
    db.execute("CREATE INDEX party_aliases_ref ON party_aliases(ref)")


# dashes and minus signs people paste instead of "-" (Unicode Pd, plus the math minus and friends)
_DASHES = {ord(c): "-" for c in (
    "\u058a\u05be\u1400\u1806\u2010\u2011\u2012\u2013\u2014\u2015\u2043\u2212\u2796\u02d7"
    "\u2e17\u2e1a\u2e3a\u2e3b\u2e40\u2e5d\u301c\u3030\u30a0\ufe31\ufe32\ufe58\ufe63\uff0d"
)}
# a phone number as people write it: digits and separators, an optional + or 00 in front
_PHONE_SHAPED = re.compile(r"\+?[0-9(][0-9 ().\-/]*")
MIN_PHONE_DIGITS = 6
_TEL_URI = re.compile(r"^tel:(//)?", re.IGNORECASE)


def clean_text(text: str) -> str:
    """Identifier text as a person meant it: what copy-paste adds is taken away.

    NFKC (full-width letters and digits, compatibility spaces), then format
    characters removed (Unicode category Cf: bidi marks such as the U+202A…
    U+202C that Outlook and Word wrap numbers in, zero-width spaces and
    joiners, the BOM, soft hyphens), control characters and line or paragraph
    separators turned into spaces, every dash and minus variant made "-", and
    every Unicode decimal digit (Arabic-Indic, Devanagari…) made ASCII.
    Leading and trailing white space is stripped.
    """
    out = []
    for ch in unicodedata.normalize("NFKC", str(text)).translate(_DASHES):
        cat = unicodedata.category(ch)
        if cat == "Cf":
            continue
        if cat in ("Cc", "Zl", "Zp", "Zs"):
            out.append(" ")
        elif cat == "Nd":
            out.append(str(unicodedata.decimal(ch)))
        else:
            out.append(ch)
    return "".join(out).strip()


def _phone_digits(text: str) -> str | None:
    """``+`` and digits of phone-shaped text (``00`` becomes ``+``, a ``(0)`` after a country code goes), else None."""
    text = text.strip(" .-/")
    if not _PHONE_SHAPED.fullmatch(text):
        return None
    international = text.startswith("+") or text.startswith("00")
    if international:
        text = text.replace("(0)", "", 1)
    digits = re.sub(r"[^0-9]", "", text)
    if len(digits) < MIN_PHONE_DIGITS:
        return None
    if text.startswith("00"):
        return "+" + digits[2:]
    return ("+" if international else "") + digits


@migrations()
def m003_display_name(db: Database) -> None:
    # a name managers know an *agent* by ("Sanne (team B)"): agents are staff, and a supervisor must
    # know whom they coach; callers never get one
    db.execute("ALTER TABLE parties ADD COLUMN display_name TEXT")


def canonical_identifier(identifier: str, *, region: str = "NL") -> str:
    """Canonical form of an external identifier; the same person always gets the same form.

    The text is first cleaned (:func:`clean_text`) and a ``tel:`` URI
    prefix (and any ``;parameters``) dropped. Phone-shaped text — digits
    with spaces, dots, dashes, slashes or brackets, an optional leading
    ``+`` or ``00`` — becomes E.164 when ``phonenumbers`` calls it a valid
    number in ``region`` (``06-12345678`` → ``+31612345678``); when it does
    not (fictional UK ranges, another country's national format), it still
    loses every separator: ``+`` and digits for an international number
    (``00`` read as ``+``), digits alone for a national one. Anything else
    (customer numbers, employee ids) is case-folded with its inner white
    space collapsed.

    Parameters
    ----------
    identifier : str
        Phone, customer or employee number as typed or pasted.
    region : str
        ISO 3166 region for national phone numbers (``home.config["phone_region"]``).

    Returns
    -------
    str
        Never empty.

    Raises
    ------
    BadInput
        If nothing is left of the identifier after cleaning.
    """
    text = "" if identifier is None else clean_text(identifier)
    uri = _TEL_URI.match(text)
    if uri:
        text = text[uri.end():].split(";", 1)[0].strip()
    if not text:
        raise BadInput("a party identifier must not be empty" + (
            "" if identifier is None or not str(identifier).strip() else
            f" (only invisible or format characters in {str(identifier)!r})"))
    digits = _phone_digits(text)
    if digits is not None:
        try:
            number = phonenumbers.parse(digits, region)
        except phonenumbers.NumberParseException:
            number = None
        if number is not None and phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        return digits
    return " ".join(text.casefold().split())


def pseudonym(secret: bytes, canonical: str) -> str:
    """Keyed pseudonym of a canonical identifier (hex, 64 characters)."""
    return hmac.new(secret, b"party:" + canonical.encode(), hashlib.sha256).hexdigest()


def suppression_token(secret: bytes, pseudo: str) -> str:
    # a second, differently-labelled HMAC: the token cannot be joined to the
    # pseudonyms in old backups or exports
    return hmac.new(secret, b"suppress:" + pseudo.encode(), hashlib.sha256).hexdigest()


def labels(db: Database, refs: Iterable[str], *, display_names: bool = True) -> dict[str, str]:
    """ref → how staff see the party ("phone ••78"; an agent by their display name unless ``display_names=False``)."""
    refs = [r for r in dict.fromkeys(refs) if r]
    out: dict[str, str] = {}
    for i in range(0, len(refs), 500):
        chunk = refs[i:i + 500]
        for ref, label, name in db.execute(
                f"SELECT ref, label, display_name FROM parties WHERE ref IN ({','.join('?' * len(chunk))})", chunk):
            out[ref] = (name if display_names else None) or label
    return out


def display_label(canonical: str) -> str:
    """A label that lets staff recognise a party without storing the identifier.

    Phone numbers keep only their last two digits; other ids their first two
    characters. Enough to tell two parties on a screen apart, not to find one.
    """
    if canonical.lstrip("+").isdigit() and len(canonical.lstrip("+")) >= MIN_PHONE_DIGITS:
        return "phone ••" + canonical[-2:]
    return canonical[:2] + "…"


def find(db: Database, pseudo: str) -> dict | None:
    """The party row a pseudonym belongs to, following a merge; None when unknown."""
    rows = list(db["parties"].rows_where("pseudonym = ?", [pseudo], limit=1))
    if rows:
        return rows[0]
    alias = db.execute("SELECT ref FROM party_aliases WHERE pseudonym = ?", [pseudo]).fetchone()
    if alias is None:
        return None
    rows = list(db["parties"].rows_where("ref = ?", [alias[0]], limit=1))
    return rows[0] if rows else None


def lookup(db: Database, secret: bytes, identifier: str, *, region: str = "NL") -> dict:
    """The party row for an identifier (a merged party's identifier finds the party it joined).

    Raises
    ------
    NotFound
        If no party has that identifier.
    """
    row = find(db, pseudonym(secret, canonical_identifier(identifier, region=region)))
    if row is None:
        raise NotFound(f"no party with identifier {identifier!r} is known")
    return row


def is_suppressed(db: Database, secret: bytes, identifier: str, *, region: str = "NL") -> bool:
    pseudo = pseudonym(secret, canonical_identifier(identifier, region=region))
    return db["suppressed"].count_where("token = ?", [suppression_token(secret, pseudo)]) > 0


def ensure(db: Database, secret: bytes, identifier: str, *, region: str = "NL", now: str) -> dict:
    """The party row for an identifier, created if new. Call inside a transaction.

    The returned row has ``created`` set to True when it was made now.
    """
    canonical = canonical_identifier(identifier, region=region)
    pseudo = pseudonym(secret, canonical)
    found = find(db, pseudo)
    if found is not None:
        return dict(found, created=False)
    row = {"ref": secrets.token_hex(12), "pseudonym": pseudo, "label": display_label(canonical), "created_at": now}
    db["parties"].insert(row)
    return dict(row, created=True)


def get(db: Database, ref: str) -> dict:
    rows = list(db["parties"].rows_where("ref = ?", [ref], limit=1))
    if not rows:
        raise NotFound(f"no party with reference {ref!r}")
    return rows[0]


def pseudonyms_of(db: Database, ref: str) -> list[str]:
    """Every pseudonym that resolves to a party: its own, then those of parties merged into it."""
    own = [r[0] for r in db.execute("SELECT pseudonym FROM parties WHERE ref = ?", [ref])]
    return own + [r[0] for r in db.execute("SELECT pseudonym FROM party_aliases WHERE ref = ? ORDER BY pseudonym", [ref])]


def alternative_forms(canonical: str) -> list[str]:
    """Other canonical forms the same phone number may have been stored under.

    A number of another country typed in its national format cannot be told
    apart from a local one: ``0470 12 34 56`` in an NL installation is kept as
    ``0470123456``, while ``+32 470 12 34 56`` is ``+32470123456``. For an
    international number this gives its national digits; for national digits,
    the E.164 form in every region where they are a valid number. Used only
    to point staff at a party that may be the same person (they then decide,
    and ``clipkit party merge`` joins them); never to match automatically.
    """
    out: list[str] = []
    if canonical.startswith("+") and canonical[1:].isdigit():
        try:
            number = phonenumbers.parse(canonical, None)
        except phonenumbers.NumberParseException:
            return []
        national = re.sub(r"[^0-9]", "", phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL))
        if national and national != canonical[1:]:
            out.append(national)
    elif canonical.isdigit() and len(canonical) >= MIN_PHONE_DIGITS:
        for region in sorted(phonenumbers.SUPPORTED_REGIONS):
            try:
                number = phonenumbers.parse(canonical, region)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(number):
                out.append(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    return sorted(set(out) - {canonical})


def possible_matches(db: Database, secret: bytes, identifier: str, *, region: str = "NL") -> list[dict]:
    """Parties stored under an :func:`alternative_forms` spelling of the identifier (maybe the same person)."""
    canonical = canonical_identifier(identifier, region=region)
    found: dict[str, dict] = {}
    for form in alternative_forms(canonical):
        row = find(db, pseudonym(secret, form))
        if row is not None:
            found[row["ref"]] = row
    return [found[k] for k in sorted(found)]
