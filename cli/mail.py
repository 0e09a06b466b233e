"""``deskgraph mailbox add|list|test|remove`` and ``deskgraph mail poll|send``.

Passwords come from an environment variable (``--imap-password-env NAME``, default
``DESKGRAPH_IMAP_PASSWORD``; ``--smtp-password-env``, default ``DESKGRAPH_SMTP_PASSWORD``) or,
when it is unset, a prompt without echo; never from the command line, where they would end up
in shell history and ``ps``. Listings never show a password.
"""

from __future__ import annotations

import asyncio
import os
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cli.pool import run_with_pool

mailbox_app = typer.Typer(help="Mailboxes (IMAP in, SMTP out) of a tenant.", no_args_is_help=True)
mail_app = typer.Typer(help="Fetch and send mail.", no_args_is_help=True)
console = Console()

TenantOpt = Annotated[str, typer.Option("--tenant", help="Tenant slug")]


def _password(env_name: str, prompt: str) -> str:
    value = os.environ.get(env_name)
    if value:
        return value
    value = typer.prompt(prompt, hide_input=True, default="", show_default=False)
    if not value:
        raise ValueError(f"no password: set {env_name} or type one at the prompt")
    return str(value)


def _box() -> Any:
    from helpdesk.config import get_settings
    from helpdesk.mailboxes import SecretBox, load_mail_key

    return SecretBox(load_mail_key(get_settings()))


@mailbox_app.command("add")
def add(
    tenant: TenantOpt,
    name: Annotated[str, typer.Option("--name", help="A name for the mailbox")],
    imap_host: Annotated[str, typer.Option("--imap-host")],
    imap_user: Annotated[str, typer.Option("--imap-user")],
    from_address: Annotated[str, typer.Option("--from-address", help="Replies come from it")],
    imap_port: Annotated[int, typer.Option("--imap-port")] = 993,
    imap_security: Annotated[
        str, typer.Option("--imap-security", help="tls, starttls, none")
    ] = "tls",
    imap_folder: Annotated[str, typer.Option("--imap-folder")] = "INBOX",
    imap_password_env: Annotated[
        str, typer.Option("--imap-password-env", help="Environment variable with the password")
    ] = "DESKGRAPH_IMAP_PASSWORD",
    smtp_host: Annotated[str | None, typer.Option("--smtp-host")] = None,
    smtp_port: Annotated[int, typer.Option("--smtp-port")] = 465,
    smtp_security: Annotated[
        str, typer.Option("--smtp-security", help="tls, starttls, none")
    ] = "tls",
    smtp_user: Annotated[str | None, typer.Option("--smtp-user")] = None,
    smtp_password_env: Annotated[
        str, typer.Option("--smtp-password-env", help="Environment variable with the password")
    ] = "DESKGRAPH_SMTP_PASSWORD",
    from_name: Annotated[str | None, typer.Option("--from-name")] = None,
    poll_interval: Annotated[int, typer.Option("--poll-interval", help="Seconds")] = 60,
) -> None:
    """Add a mailbox; passwords from the environment or a prompt, stored encrypted."""
    from helpdesk import audit, mailboxes
    from helpdesk.errors import DeskError
    from helpdesk.tenancy import tenant_scope
    from helpdesk.tenants import get_tenant

    try:
        imap_password = _password(imap_password_env, "IMAP password")
        smtp_password = (
            _password(smtp_password_env, "SMTP password") if smtp_host and smtp_user else None
        )
        data = mailboxes.MailboxInput(
            name=name,
            imap_host=imap_host,
            imap_port=imap_port,
            imap_security=imap_security,
            imap_user=imap_user,
            imap_password=imap_password,
            imap_folder=imap_folder,
            from_address=from_address,
            from_name=from_name,
            smtp_host=smtp_host,
            smtp_port=smtp_port if smtp_host else None,
            smtp_security=smtp_security if smtp_host else None,
            smtp_user=smtp_user,
            smtp_password=smtp_password,
            poll_interval_s=poll_interval,
        )
        data.check()
    except (ValueError, DeskError) as exc:
        console.print(f"[red]error:[/] {getattr(exc, 'message', exc)}", soft_wrap=True)
        raise typer.Exit(2) from exc
    box = _box()

    async def body(pool: Any) -> None:
        t = await get_tenant(pool, tenant)
        async with tenant_scope(pool, t.id) as conn:
            mb = await mailboxes.create_mailbox(conn, t.id, data, box)
            await audit.record(
                conn,
                t.id,
                audit.Actor("cli"),
                "mailbox.create",
                "mailbox",
                mb.id,
                {"name": mb.name},
            )
        console.print(f"added mailbox [bold]{mb.name}[/] ({mb.id}) to tenant {t.slug}")

    run_with_pool(body)


@mailbox_app.command("list")
def list_(tenant: TenantOpt) -> None:
    """List a tenant's mailboxes (no passwords)."""
    from helpdesk import mailboxes
    from helpdesk.tenancy import tenant_scope
    from helpdesk.tenants import get_tenant

    async def body(pool: Any) -> None:
        t = await get_tenant(pool, tenant)
        async with tenant_scope(pool, t.id) as conn:
            found = await mailboxes.list_mailboxes(conn, t.id)
        table = Table("name", "imap", "smtp", "from", "last uid", "last poll", "last error")
        for m in found:
            table.add_row(
                m.name,
                f"{m.imap_user}@{m.imap_host}:{m.imap_port} ({m.imap_security}) {m.imap_folder}",
                f"{m.smtp_host}:{m.smtp_port} ({m.smtp_security})" if m.smtp_host else "",
                m.from_address,
                str(m.last_uid),
                m.last_polled_at.strftime("%Y-%m-%d %H:%M:%S") if m.last_polled_at else "",
                m.last_error or "",
            )
        console.print(table)

    run_with_pool(body)


@mailbox_app.command("test")
def test(
    tenant: TenantOpt, name: Annotated[str, typer.Argument(help="Mailbox name or id")]
) -> None:
    """Try the IMAP and SMTP connections (log in, open the folder; send nothing)."""
    from desk.email.fetch import MailConnectionError, check_imap
    from desk.email.send import check_smtp
    from helpdesk import mailboxes
    from helpdesk.tenants import get_tenant

    box = _box()
    failures: list[str] = []

    async def body(pool: Any) -> None:
        t = await get_tenant(pool, tenant)
        mb = await mailboxes.get_mailbox(pool, t.id, name)
        secrets_ = await mailboxes.get_mailbox_secrets(pool, t.id, mb.id, box)
        try:
            console.print(await check_imap(mb, secrets_.imap_password))
        except MailConnectionError as exc:
            failures.append(str(exc))
        if mb.smtp_host:
            try:
                console.print(await check_smtp(mb, secrets_.smtp_password))
            except ConnectionError as exc:
                failures.append(str(exc))

    run_with_pool(body)
    for failure in failures:
        console.print(f"[red]failed:[/] {failure}", soft_wrap=True)
    if failures:
        raise typer.Exit(1)


@mailbox_app.command("remove")
def remove(
    tenant: TenantOpt, name: Annotated[str, typer.Argument(help="Mailbox name or id")]
) -> None:
    """Remove a mailbox and the mail stored from it."""
    from helpdesk import audit, mailboxes
    from helpdesk.tenancy import tenant_scope
    from helpdesk.tenants import get_tenant

    async def body(pool: Any) -> None:
        t = await get_tenant(pool, tenant)
        async with tenant_scope(pool, t.id) as conn:
            mb = await mailboxes.get_mailbox(conn, t.id, name)
            await mailboxes.delete_mailbox(conn, t.id, mb.id)
            await audit.record(
                conn,
                t.id,
                audit.Actor("cli"),
                "mailbox.delete",
                "mailbox",
                mb.id,
                {"name": mb.name},
            )
        console.print(f"removed mailbox [bold]{mb.name}[/]")

    run_with_pool(body)


@mail_app.command("poll")
def poll(
    tenant: TenantOpt,
    once: Annotated[bool, typer.Option("--once", help="Poll each mailbox once and exit")] = False,
    mailbox: Annotated[str | None, typer.Option("--mailbox", help="Only this one")] = None,
) -> None:
    """Fetch new mail of the tenant's mailboxes (each once with --once; else every interval)."""
    from desk.email.fetch import poll_mailbox
    from helpdesk import mailboxes
    from helpdesk.config import get_settings
    from helpdesk.tenants import get_tenant

    box = _box()
    settings = get_settings()

    async def body(pool: Any) -> None:
        t = await get_tenant(pool, tenant)
        while True:
            found = (
                [await mailboxes.get_mailbox(pool, t.id, mailbox)]
                if mailbox
                else await mailboxes.list_mailboxes(pool, t.id)
            )
            for mb in found:
                r = await poll_mailbox(pool, t.id, mb.id, box=box, settings=settings)
                console.print(
                    f"{mb.name}: {r.stored} stored, {r.duplicates} already stored,"
                    f" {r.flagged} flagged, {r.automatic} automatic"
                    + (", UIDVALIDITY changed" if r.uidvalidity_reset else "")
                    + (f" [red]stopped: {r.error}[/]" if r.error else ""),
                    soft_wrap=True,
                )
            if once:
                return
            await asyncio.sleep(min((m.poll_interval_s for m in found), default=60))

    run_with_pool(body)


@mail_app.command("send")
def send(tenant: TenantOpt) -> None:
    """Send the tenant's due outbox messages once."""
    from desk.email.send import send_pending
    from helpdesk.config import get_settings
    from helpdesk.tenants import get_tenant

    box = _box()

    async def body(pool: Any) -> None:
        t = await get_tenant(pool, tenant)
        r = await send_pending(pool, t.id, box=box, settings=get_settings())
        console.print(
            f"sent {r.sent}, to retry {r.retried}, failed {r.failed}, uncertain {r.uncertain}"
        )

    run_with_pool(body)
