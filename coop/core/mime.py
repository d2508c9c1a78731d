"""An email as it goes over the wire: the MIME message's bytes, its headers encoded and folded as
the standard library's SMTP policy does, and addresses as SMTP takes them."""

from __future__ import annotations

import base64
import functools
import re
import secrets
import sys
from collections.abc import Mapping, Sequence
from email.encoders import encode_base64
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import EmailPolicy
from email.utils import formataddr, formatdate, parseaddr


def mime_message(
    *,
    subject: str,
    sender: str,
    to: str,
    text: str,
    html: str,
    message_id: str,
    attachments: Sequence[tuple[str, str, bytes]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> bytes:
    """The message as it goes over the wire: multipart/mixed around the plain text and HTML
    alternatives and the attachments (as Flask-Mail builds it), with the key's Message-ID.

    Without attachments (every bulk message) the bytes are written here directly, in the very
    layout the standard library's generator writes under the SMTP policy: the generator took
    about 1.5 ms a message, most of it folding short headers and compiling a regular expression
    per multipart boundary to search the parts for it (our boundaries are random, as the
    generator's are). With attachments the standard library builds it. Headers are encoded and
    folded by RFC 5322/2047 (the SMTP policy): compat32's ``Header`` split a subject into
    adjacent encoded words and the space between them was lost on reading ("Oost – één" arrived
    as "Oost –één"). ``headers`` are added as they are (e.g. List-Unsubscribe); a value with a
    line break is refused (header injection).
    """
    extra = dict(headers or {})
    for name, value in extra.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise ValueError(f"line break in the email header {name!r}")
    top = [
        ("Subject", _header(subject)),
        ("From", _address(sender)),
        ("To", _address(to)),
        ("Date", formatdate(localtime=True)),
        ("Message-ID", message_id),
        *extra.items(),
    ]
    if not attachments:
        return _wire_message(top, text, html)
    outer = MIMEMultipart(policy=_WIRE)
    alternative = MIMEMultipart("alternative", policy=_WIRE)
    alternative.attach(MIMEText(text, "plain", "utf-8", policy=_WIRE))
    alternative.attach(MIMEText(html, "html", "utf-8", policy=_WIRE))
    outer.attach(alternative)
    for name, value in top:
        outer[name] = value
    for filename, mimetype, content in attachments:
        part = MIMEBase(*mimetype.split("/", 1), policy=_WIRE)
        part.set_payload(content)
        encode_base64(part)
        part.add_header("Content-Disposition", "attachment", filename=filename)
        outer.attach(part)
    return outer.as_bytes()


_CRLF = b"\r\n"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _wire_message(top: Sequence[tuple[str, str]], text: str, html: str) -> bytes:
    """multipart/mixed around multipart/alternative (text, HTML), as the standard library writes it."""
    outer, inner = _boundary(text, html), _boundary(text, html)
    lines = [
        _multipart_type("mixed", outer),
        b"MIME-Version: 1.0\r\n",
        *(_wire_header(name, value) for name, value in top),
        _CRLF,
        f"--{outer}\r\n".encode(),
        _multipart_type("alternative", inner),
        b"MIME-Version: 1.0\r\n",
        _CRLF,
        f"--{inner}\r\n".encode(),
        _wire_text("plain", text),
        f"\r\n--{inner}\r\n".encode(),
        _wire_text("html", html),
        f"\r\n--{inner}--\r\n".encode(),
        f"\r\n--{outer}--\r\n".encode(),
    ]
    return b"".join(lines)


def _multipart_type(subtype: str, boundary: str) -> bytes:
    """The Content-Type of a multipart with ``boundary`` (digits and "="), folded before the
    boundary when too long, as the policy folds it (without parsing it first: 0.4 ms)."""
    line = f'Content-Type: multipart/{subtype}; boundary="{boundary}"'
    if len(line) <= 78:
        return line.encode("ascii") + _CRLF
    return f'Content-Type: multipart/{subtype};\r\n boundary="{boundary}"\r\n'.encode("ascii")


def _boundary(*parts: str) -> str:
    while True:
        boundary = "=" * 15 + str(secrets.randbelow(sys.maxsize)) + "=="
        if not any(boundary in part for part in parts):
            return boundary


def _wire_header(name: str, value: str) -> bytes:
    line = f"{name}: {value}"
    # An encoded word (a name formataddr encoded) is decoded and encoded again, as the
    # generator does, so that both write the same bytes.
    if line.isascii() and "=?" not in line:
        if len(line) <= 78:
            return line.encode("ascii") + _CRLF
        if any(len(word) > 60 for word in value.split()):
            return line.encode("ascii") + _CRLF  # as _WirePolicy.fold_binary writes it
    return _folded(name, value)


@functools.lru_cache(maxsize=256)
def _folded(name: str, value: str) -> bytes:
    """As the generator does: the policy's header object encodes and folds it, line end
    included. Kept for the next message: a mass mailing's subject and sender are the same in
    each of its messages, and parsing and folding a header costs a tenth of a millisecond."""
    folded: bytes = _WIRE.fold_binary(name, _WIRE.header_factory(name, value))
    return folded


def _wire_text(subtype: str, content: str) -> bytes:
    """A text part in UTF-8 as MIMEText(..., "utf-8") writes it once Flask-Mail is imported
    (which sets UTF-8 bodies to go unencoded): 7bit when ASCII, else 8bit; base64 only when a
    line is longer than SMTP allows (998), which the generator would have sent as it was."""
    lines = _LINE_BREAK.split(content)
    if any(len(line) > 998 for line in lines):
        encoding = "base64"
        body = base64.encodebytes(content.encode("utf-8")).replace(b"\n", _CRLF)
    else:
        encoding = "7bit" if content.isascii() else "8bit"
        body = "\r\n".join(lines).encode("utf-8")
    head = (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\nMIME-Version: 1.0\r\n'
        f"Content-Transfer-Encoding: {encoding}\r\n\r\n"
    )
    return head.encode("ascii") + body


class _WirePolicy(EmailPolicy):
    """The SMTP policy (headers encoded and folded by RFC 5322/2047, CRLF line ends; smtplib
    sends the bytes as given), except that an ASCII value with a word too long for one line (a
    List-Unsubscribe URL) goes out on one line as it is: the standard folding would turn the URL
    into encoded words, which the mail client does not decode in that header."""

    def fold_binary(self, name: str, value: str) -> bytes:
        text = str(value)
        if text.isascii() and any(len(word) > 60 for word in text.split()):
            return f"{name}: {text}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


_WIRE = _WirePolicy(linesep="\r\n")


def _header(value: str) -> str:
    """The value as written; the policy encodes what is not ASCII when the message is made."""
    if "\r" in value or "\n" in value:
        raise ValueError("line break in an email header")
    return value


# A bare ASCII address ("anna@example.nl"): what parseaddr would return unchanged.
_BARE_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")


def is_bare_address(value: str) -> bool:
    """An address alone (``anna@example.nl``), no display name or angle brackets around it."""
    return _BARE_ADDRESS.fullmatch(value) is not None


@functools.lru_cache(maxsize=64)
def _address(value: str) -> str:
    """A From or To value as the header writes it. Kept for the next message (the sender is
    the same in each), and a bare address is taken as it is: parsing one costs 0.1 ms."""
    if _BARE_ADDRESS.fullmatch(value):
        return value
    name, address = parseaddr(value)
    if not address or "\r" in value or "\n" in value:
        raise ValueError(f"not an email address: {value!r}")
    address = envelope_address(address)
    return formataddr((_header(name), address)) if name else address


@functools.lru_cache(maxsize=8)
def _envelope_sender(sender: str) -> str:
    return envelope_address(parseaddr(sender)[1])


def envelope_address(address: str) -> str:
    """An address as SMTP takes it: a domain with non-ASCII letters in its IDNA form (as
    Flask-Mail did), the rest as given."""
    local, _, domain = address.rpartition("@")
    if domain and not domain.isascii():
        domain = domain.encode("idna").decode("ascii")
    return f"{local}@{domain}" if local else address
