"""clipkit: recorded support calls in, anonymized training clips out, with the GDPR paperwork done.

The architecture, bottom-up: ``home`` (the data folder and key) → ``db`` (SQLite,
migrations) → ``parties`` (pseudonyms), ``audio`` (read/validate) →
``library`` (recordings, clips) → ``auditlog`` (hash-chained log) → the
features built on them. ``cli`` and the Streamlit pages in ``app_pages/`` are
thin layers over these modules.
"""

__version__ = "0.1.0"

from .errors import (  # noqa: F401
    BadAudio,
    BadInput,
    ClipkitError,
    DatabaseBusy,
    Forbidden,
    HomeMissing,
    KeyFileError,
    NotFound,
    PolicyRefusal,
)
