"""A real Dovecot IMAP server on loopback for the mail tests, configured in a temporary folder.

Runs as the current user where that is not root (its own login and internal users). Under root,
Dovecot refuses to run its login process as root and to give mail to uid 0, so there it uses
the package's ``dovenull`` / ``dovecot`` users and keeps mail as ``nobody``. Users are
passwd-file entries written before start and handed out one per test, so each test gets an
empty mailbox of its own.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

USERS = 200


def dovecot_binary() -> str | None:
    """The dovecot binary, or None when Debian's ``dovecot-imapd`` is not installed."""
    return shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Dovecot:
    """A running Dovecot: where it listens and how to add a user."""

    binary: str
    root: Path
    port: int

    @property
    def config(self) -> Path:
        return self.root / "dovecot.conf"

    _next: int = 0

    def new_user(self) -> str:
        """A user nobody has used yet (password ``secret``): an empty mailbox."""
        if self._next >= USERS:
            raise RuntimeError(f"the test Dovecot has only {USERS} users")
        self._next += 1
        return f"user{self._next - 1}"

    def stop(self) -> None:
        subprocess.run([self.binary, "-c", str(self.config), "stop"], check=False)


def start(root: Path) -> Dovecot:
    """Write a configuration under ``root`` and start Dovecot on a free loopback port."""
    binary = dovecot_binary()
    assert binary is not None
    port = free_port()
    for sub in ("run", "state", "mail"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    # Written once before start: Dovecot caches the file and notices changes only by mtime.
    (root / "passwd").write_text(
        "".join(f"user{i}:{{PLAIN}}secret::::::\n" for i in range(USERS)), encoding="utf-8"
    )
    if os.getuid() == 0:
        internal, login = "dovecot", "dovenull"
        mail_uid = mail_gid = 65534  # nobody
        os.chown(root / "mail", mail_uid, mail_gid)
        os.chmod(root, 0o755)
    else:
        internal = login = pwd.getpwuid(os.getuid()).pw_name
        mail_uid, mail_gid = os.getuid(), os.getgid()
    import grp

    internal_group = grp.getgrgid(pwd.getpwnam(internal).pw_gid).gr_name
    (root / "dovecot.conf").write_text(
        f"""
base_dir = {root}/run
state_dir = {root}/state
instance_name = deskgraph-test-{port}
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal}
default_internal_group = {internal_group}
default_login_user = {login}
first_valid_uid = 1
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
service stats {{
  chroot =
}}
service auth {{
  chroot =
}}
service imap {{
  chroot =
}}
""",
        encoding="utf-8",
    )
    subprocess.run([binary, "-c", str(root / "dovecot.conf")], check=True)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(100).startswith(b"* OK"):
                    return Dovecot(binary, root, port)
        except OSError:
            time.sleep(0.1)
    log = (
        (root / "dovecot.log").read_text(errors="replace")
        if (root / "dovecot.log").exists()
        else ""
    )
    raise RuntimeError(f"dovecot did not come up on port {port}:\n{log[-2000:]}")
