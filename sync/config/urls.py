"""Database URLs in messages and logs: the password never shows, whatever it contains.

A PostgreSQL password with ``@``, ``#``, ``/`` or ``?`` written raw (not percent-encoded)
makes every URL parser split the URL in the wrong place: SQLAlchemy reads
``postgresql://lp:p@ss#w/rd@db/lp`` as password ``p`` on host ``ss#w``, so masking the
parsed password still prints the rest of it, and the driver then echoes it as a host name
(``could not translate host name "ss#w"``). So:

- ``userinfo_problem`` finds such a URL; the settings refuse it (``LEADPILOT_STORE_URL``
  names the characters to encode), so it never reaches a driver;
- ``redact_url`` masks everything between the user name and the *last* ``@`` of the URL's
  authority — the whole password whether or not it parses — and renders the rest through
  SQLAlchemy's parser;
- ``scrub`` removes the password (raw, decoded, encoded, and each piece a misparse could
  have turned into a host or a path) from any text, e.g. a driver's error message.
"""

from __future__ import annotations

from urllib.parse import parse_qs, quote, quote_plus, unquote

MASK = "***"
# Characters a password must percent-encode in a URL's user-info (RFC 3986 gen-delims).
_RESERVED = {"@": "%40", "#": "%23", "/": "%2F", "?": "%3F"}


def _split(url: str) -> tuple[str, str | None, str] | None:
    """``(scheme, userinfo, rest)`` using the last ``@`` before the path as the user-info's end;
    ``None`` when the URL has no ``scheme://``."""
    scheme, sep, remainder = url.partition("://")
    if not sep:
        return None
    at = remainder.rfind("@")
    if at < 0:
        return scheme, None, remainder
    return scheme, remainder[:at], remainder[at + 1 :]


def userinfo_problem(url: str) -> str | None:
    """Why the user-info of ``url`` would be misread (raw reserved characters), or ``None``.
    The message names the characters and their encodings, never the password."""
    parts = _split(url)
    if parts is None or parts[1] is None:
        return None
    raw = [c for c in _RESERVED if c in parts[1]]
    if not raw:
        return None
    codes = ", ".join(f"{c} as {_RESERVED[c]}" for c in raw)
    return (f"the user name or password holds {' '.join(raw)} written as is; percent-encode them "
            f"({codes}), e.g. postgresql://leadpilot:p%40ss%23w@db:5432/leadpilot")


def redact_url(url: str) -> str:
    """``url`` with its password (in the user-info, or libpq's ``?password=``) replaced by ``***``,
    re-rendered when it parses."""
    parts = _split(url)
    if parts is None:
        return url
    scheme, userinfo, rest = parts
    shown = url
    if userinfo is not None:
        user, colon, _password = userinfo.partition(":")
        if _RESERVED.keys() & set(user):  # a raw reserved character: where the password starts is unknowable
            user, colon = "", ":"
        shown = f"{scheme}://{user}{':' + MASK if colon else ''}@{rest}"
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(shown)
        if "password" in parsed.query:
            parsed = parsed.update_query_dict({"password": "hidden"})
        return parsed.render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable rest is shown as is; the user-info is masked already
        return shown if "password=" not in shown else shown.partition("?")[0] + "?(query hidden)"


def secret_pieces(url: str) -> list[str]:
    """What of ``url`` is secret: the password as written, decoded and encoded, and its pieces
    between reserved characters (what a misparse turns into a host, a path or a query)."""
    parts = _split(url)
    query = parse_qs(url.partition("?")[2]).get("password", [])
    if parts is None or parts[1] is None or ":" not in parts[1]:
        return sorted((p for p in query if p), key=len, reverse=True)
    password = parts[1].partition(":")[2]
    pieces = {*query, password, unquote(password), quote(unquote(password), safe=""), quote_plus(unquote(password))}
    for whole in list(pieces):
        # every span between two reserved characters (or an end): "ss#w" of "p@ss#w/rd"
        cuts = [-1, *(i for i, c in enumerate(whole) if c in _RESERVED), len(whole)]
        pieces |= {whole[a + 1 : b] for i, a in enumerate(cuts) for b in cuts[i + 1 :] if b - a > 3}
    return sorted((p for p in pieces if p), key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """``text`` (an error message, a log line) with every secret piece of ``url`` masked."""
    for piece in secret_pieces(url):
        text = text.replace(piece, MASK)
    return text
