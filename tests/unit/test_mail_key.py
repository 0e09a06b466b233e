"""The mailbox passwords' key: generated once under the data dir, or taken from the settings."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from helpdesk.config import Settings
from helpdesk.mailboxes import MailboxInput, SecretBox, load_mail_key


def test_a_generated_key_is_kept_private_and_reused(tmp_path: Path) -> None:
    settings = Settings(DESKGRAPH_DATA_DIR=tmp_path, DESKGRAPH_MAIL_KEY=None)
    key = load_mail_key(settings)
    assert load_mail_key(settings) == key
    assert stat.S_IMODE((tmp_path / "mail_key").stat().st_mode) == 0o600
    box = SecretBox(key)
    token = box.seal("app-password")
    assert b"app-password" not in token and box.open(token) == "app-password"
    assert "key" in repr(box) and key.decode() not in repr(box)


def test_a_configured_key_is_used_and_a_bad_one_refused(tmp_path: Path) -> None:
    key = Fernet.generate_key()
    assert (
        load_mail_key(Settings(DESKGRAPH_DATA_DIR=tmp_path, DESKGRAPH_MAIL_KEY=key.decode())) == key
    )
    assert not (tmp_path / "mail_key").exists()
    with pytest.raises(ValueError, match="DESKGRAPH_MAIL_KEY must be a Fernet key"):
        load_mail_key(Settings(DESKGRAPH_DATA_DIR=tmp_path, DESKGRAPH_MAIL_KEY="short"))


def test_mailbox_input_hides_passwords_and_names_bad_values() -> None:
    from helpdesk.errors import InvalidInput

    data = MailboxInput(
        name="support",
        imap_host="imap.test",
        imap_port=993,
        imap_security="tls",
        imap_user="u",
        imap_password="hunter2",
        from_address="help@desk.test",
        smtp_password="hunter3",
    )
    assert "hunter" not in repr(data)
    data.check()
    with pytest.raises(InvalidInput, match="imap security"):
        MailboxInput(**{**data.__dict__, "imap_security": "ssl"}).check()
    with pytest.raises(InvalidInput, match="from address"):
        MailboxInput(**{**data.__dict__, "from_address": "nobody"}).check()
