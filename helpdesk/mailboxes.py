"""Mailboxes of a tenant: IMAP in, SMTP out, passwords encrypted at rest.

Passwords are Fernet tokens (``cryptography``) under the key of ``DESKGRAPH_MAIL_KEY`` (or one
generated once under ``data_dir/mail_key``). A :class:`Mailbox` as listed carries no password;
:func:`get_mailbox_secrets` decrypts them for the one caller that connects. Neither a password
nor its token is ever part of a ``repr``, a log line or a listing.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import psycopg
from cryptography.fernet import Fernet, InvalidToken

from helpdesk.config import Settings
from helpdesk.errors import Conflict, InvalidInput, NotFound
from helpdesk.tenancy import Db, connect

Security = Literal["tls", "starttls", "none"]
SECURITIES: tuple[str, ...] = ("tls", "starttls", "none")


def load_mail_key(settings: Settings) -> bytes:
    """The Fernet key that encrypts mailbox passwords (created under ``data_dir`` when unset).

    Two processes starting at once agree: the file is created exclusively and the loser of the
    race reads the winner's key.
    """
    if settings.mail_key is not None:
        key = settings.mail_key.get_secret_value().strip().encode("ascii")
        try:
            Fernet(key)
        except ValueError as exc:
            raise ValueError(
                "DESKGRAPH_MAIL_KEY must be a Fernet key (32 bytes, urlsafe base64), e.g. from"
                " `python -c 'from cryptography.fernet import Fernet;"
                " print(Fernet.generate_key().decode())'`"
            ) from exc
        return key
    path = Path(settings.data_dir) / "mail_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # the creator may not have written it yet
            text = path.read_text(encoding="ascii").strip()
            if text:
                return text.encode("ascii")
            time.sleep(0.02)
        raise ValueError(f"{path} is empty; delete it to generate a new mail key") from None
    key = Fernet.generate_key()
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key.decode("ascii") + "\n")
    return key


class SecretBox:
    """Encrypts and decrypts mailbox passwords with one Fernet key."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"

    def seal(self, secret: str) -> bytes:
        """Encrypt ``secret``."""
        return self._fernet.encrypt(secret.encode("utf-8"))

    def open(self, token: bytes) -> str:
        """Decrypt a token made by :meth:`seal`; a token of another key is a clear error."""
        try:
            return self._fernet.decrypt(bytes(token)).decode("utf-8")
        except InvalidToken as exc:
            raise ValueError(
                "a mailbox password cannot be decrypted with this DESKGRAPH_MAIL_KEY (was the key"
                " changed?); set the password again with `deskgraph mailbox add`"
            ) from exc


@dataclass(frozen=True)
class MailboxInput:
    """What a new mailbox is made of (the passwords in plain text, encrypted on the way in)."""

    name: str
    imap_host: str
    imap_port: int
    imap_security: str
    imap_user: str
    imap_password: str = field(repr=False)
    from_address: str
    imap_folder: str = "INBOX"
    from_name: str | None = None
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_security: str | None = None
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    poll_interval_s: int = 60

    def check(self) -> None:
        """Raise :class:`InvalidInput` naming the first value that is not acceptable."""
        if not self.name.strip():
            raise InvalidInput("mailbox name: expected a non-empty name")
        if not self.imap_host.strip():
            raise InvalidInput("imap host: expected a host name")
        for label, port in (("imap port", self.imap_port), ("smtp port", self.smtp_port)):
            if port is not None and not 1 <= port <= 65535:
                raise InvalidInput(f"{label}: expected 1-65535, got {port}")
        for label, sec in (
            ("imap security", self.imap_security),
            ("smtp security", self.smtp_security),
        ):
            if sec is not None and sec not in SECURITIES:
                raise InvalidInput(f"{label}: expected one of {', '.join(SECURITIES)}, got {sec!r}")
        if "@" not in self.from_address or " " in self.from_address.strip():
            raise InvalidInput(
                f"from address: expected an email address, got {self.from_address!r}"
            )
        if self.poll_interval_s <= 0:
            raise InvalidInput(f"poll interval: expected seconds > 0, got {self.poll_interval_s}")
        if self.smtp_host and (self.smtp_port is None or self.smtp_security is None):
            raise InvalidInput("smtp: a host needs a port and a security (tls, starttls, none)")


@dataclass(frozen=True)
class Mailbox:
    """A mailbox as shown to staff: no password, only whether one is set."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    imap_host: str
    imap_port: int
    imap_security: str
    imap_user: str
    imap_folder: str
    smtp_host: str | None
    smtp_port: int | None
    smtp_security: str | None
    smtp_user: str | None
    has_smtp_password: bool
    from_address: str
    from_name: str | None
    poll_interval_s: int
    uidvalidity: int | None
    last_uid: int
    last_polled_at: datetime | None
    last_error: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Mailbox:
        return cls(
            id=row["id"],
            tenant_id=row["tenant_id"],
            name=row["name"],
            imap_host=row["imap_host"],
            imap_port=row["imap_port"],
            imap_security=row["imap_security"],
            imap_user=row["imap_user"],
            imap_folder=row["imap_folder"],
            smtp_host=row["smtp_host"],
            smtp_port=row["smtp_port"],
            smtp_security=row["smtp_security"],
            smtp_user=row["smtp_user"],
            has_smtp_password=row["smtp_password_enc"] is not None,
            from_address=row["from_address"],
            from_name=row["from_name"],
            poll_interval_s=row["poll_interval_s"],
            uidvalidity=row["uidvalidity"],
            last_uid=row["last_uid"],
            last_polled_at=row["last_polled_at"],
            last_error=row["last_error"],
        )


@dataclass(frozen=True)
class MailboxSecrets:
    """The decrypted passwords of one mailbox, for the code that connects (never logged)."""

    imap_password: str = field(repr=False)
    smtp_password: str | None = field(default=None, repr=False)


async def create_mailbox(
    db: Db, tenant_id: uuid.UUID, data: MailboxInput, box: SecretBox
) -> Mailbox:
    """Create a mailbox; raise :class:`Conflict` if the tenant already has one of this name."""
    data.check()
    async with connect(db) as conn:
        try:
            cur = await conn.execute(
                "INSERT INTO mailboxes (tenant_id, name, imap_host, imap_port, imap_security,"
                " imap_user, imap_password_enc, imap_folder, smtp_host, smtp_port, smtp_security,"
                " smtp_user, smtp_password_enc, from_address, from_name, poll_interval_s)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " RETURNING *",
                (
                    tenant_id,
                    data.name.strip(),
                    data.imap_host.strip(),
                    data.imap_port,
                    data.imap_security,
                    data.imap_user,
                    box.seal(data.imap_password),
                    data.imap_folder,
                    data.smtp_host,
                    data.smtp_port,
                    data.smtp_security,
                    data.smtp_user,
                    box.seal(data.smtp_password) if data.smtp_password is not None else None,
                    data.from_address.strip().lower(),
                    data.from_name,
                    data.poll_interval_s,
                ),
            )
        except psycopg.errors.UniqueViolation as exc:
            raise Conflict(f"mailbox {data.name!r} already exists") from exc
        row = await cur.fetchone()
    assert row is not None
    return Mailbox.from_row(row)


async def list_mailboxes(db: Db, tenant_id: uuid.UUID) -> list[Mailbox]:
    """The tenant's mailboxes by name."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "SELECT * FROM mailboxes WHERE tenant_id = %s ORDER BY name", (tenant_id,)
        )
        return [Mailbox.from_row(r) for r in await cur.fetchall()]


async def get_mailbox(db: Db, tenant_id: uuid.UUID, ref: uuid.UUID | str) -> Mailbox:
    """A mailbox by id or by name; raise :class:`NotFound` if the tenant has none such."""
    row = await _row(db, tenant_id, ref)
    return Mailbox.from_row(row)


async def get_mailbox_secrets(
    db: Db, tenant_id: uuid.UUID, mailbox_id: uuid.UUID, box: SecretBox
) -> MailboxSecrets:
    """Decrypt a mailbox's passwords (for connecting only)."""
    row = await _row(db, tenant_id, mailbox_id)
    smtp = row["smtp_password_enc"]
    return MailboxSecrets(
        imap_password=box.open(row["imap_password_enc"]),
        smtp_password=box.open(smtp) if smtp is not None else None,
    )


async def delete_mailbox(db: Db, tenant_id: uuid.UUID, mailbox_id: uuid.UUID) -> None:
    """Remove a mailbox with the mail stored from it."""
    async with connect(db) as conn:
        cur = await conn.execute(
            "DELETE FROM mailboxes WHERE tenant_id = %s AND id = %s", (tenant_id, mailbox_id)
        )
        if cur.rowcount == 0:
            raise NotFound(f"no mailbox {mailbox_id}")


async def record_poll(
    db: Db, tenant_id: uuid.UUID, mailbox_id: uuid.UUID, error: str | None
) -> None:
    """Note when the mailbox was polled and what went wrong (``None``: nothing)."""
    async with connect(db) as conn:
        await conn.execute(
            "UPDATE mailboxes SET last_polled_at = now(), last_error = %s"
            " WHERE tenant_id = %s AND id = %s",
            (error, tenant_id, mailbox_id),
        )


async def _row(db: Db, tenant_id: uuid.UUID, ref: uuid.UUID | str) -> dict[str, Any]:
    async with connect(db) as conn:
        as_id: uuid.UUID | None = ref if isinstance(ref, uuid.UUID) else None
        if as_id is None:
            try:
                as_id = uuid.UUID(str(ref))
            except ValueError:
                as_id = None
        if as_id is not None:
            cur = await conn.execute(
                "SELECT * FROM mailboxes WHERE tenant_id = %s AND id = %s", (tenant_id, as_id)
            )
        else:
            cur = await conn.execute(
                "SELECT * FROM mailboxes WHERE tenant_id = %s AND name = %s", (tenant_id, ref)
            )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no mailbox {ref!s}")
    return row
