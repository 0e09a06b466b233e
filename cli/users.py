"""``deskgraph users``: create, list and disable a tenant's staff accounts, and print one-time
password reset links.

``users create`` without ``--password-stdin`` generates a password and prints it once; with it,
the password is the first line of standard input (never an argument: arguments end up in shell
history and ``ps``). Every change is written to the audit log as done by ``cli``.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cli.pool import run_with_pool

users_app = typer.Typer(help="Staff accounts (admin, manager, agent).", no_args_is_help=True)
console = Console()


def _read_password() -> str:
    line = sys.stdin.readline()
    password = line.rstrip("\r\n")
    if not password:
        raise ValueError("--password-stdin: standard input held no password")
    return password


@users_app.command("create")
def create(
    tenant: Annotated[str, typer.Argument(help="Tenant slug")],
    email: Annotated[str, typer.Argument(help="The person's email (their sign-in name)")],
    name: Annotated[str, typer.Option("--name", help="Their name, as colleagues see it")],
    role: Annotated[str, typer.Option("--role", help="admin, manager or agent")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
) -> None:
    """Create an account; print the generated password once unless one is read from stdin."""
    from helpdesk import audit, users
    from helpdesk.config import get_settings
    from helpdesk.tenancy import tenant_scope
    from helpdesk.tenants import get_tenant

    password = _read_password() if password_stdin else users.generate_password()

    async def body(pool: Any) -> None:
        t = await get_tenant(pool, tenant)
        async with tenant_scope(pool, t.id) as conn:
            user = await users.create_user(
                conn,
                t.id,
                email,
                name,
                role,
                password=password,
                hasher=users.hasher_for(get_settings()),
            )
            await audit.record(
                conn,
                t.id,
                audit.Actor("cli"),
                "user.create",
                "user",
                user.id,
                {"email": user.email, "role": user.role},
            )
        console.print(f"created {user.role} [bold]{user.email}[/] in tenant {t.slug}")
        if not password_stdin:
            console.print("password (shown only once):")
            print(password)  # plain: copyable without markup or wrapping

    run_with_pool(body)


@users_app.command("list")
def list_users(tenant: Annotated[str, typer.Argument(help="Tenant slug")]) -> None:
    """List a tenant's accounts."""
    from helpdesk import users
    from helpdesk.tenancy import tenant_scope
    from helpdesk.tenants import get_tenant

    async def body(pool: Any) -> None:
        t = await get_tenant(pool, tenant)
        async with tenant_scope(pool, t.id) as conn:
            found = await users.list_users(conn, t.id)
        table = Table("email", "name", "role", "active", "last sign-in")
        for u in found:
            table.add_row(
                u.email,
                u.name,
                u.role,
                "yes" if u.active else "no",
                u.last_sign_in_at.strftime("%Y-%m-%d %H:%M") if u.last_sign_in_at else "",
            )
        console.print(table)

    run_with_pool(body)


@users_app.command("disable")
def disable(
    tenant: Annotated[str, typer.Argument(help="Tenant slug")],
    email: Annotated[str, typer.Argument(help="The account's email")],
) -> None:
    """Disable an account: it can no longer sign in and its sessions end at once."""
    from helpdesk import audit, users
    from helpdesk.tenancy import tenant_scope
    from helpdesk.tenants import get_tenant

    async def body(pool: Any) -> None:
        t = await get_tenant(pool, tenant)
        async with tenant_scope(pool, t.id) as conn:
            user = await users.get_user_by_email(conn, t.id, email)
            await users.update_user(conn, t.id, user.id, active=False)
            await audit.record(
                conn, t.id, audit.Actor("cli"), "user.update", "user", user.id, {"active": False}
            )
        console.print(f"disabled {user.email} in tenant {t.slug}")

    run_with_pool(body)


@users_app.command("reset-link")
def reset_link(
    tenant: Annotated[str, typer.Argument(help="Tenant slug")],
    email: Annotated[str, typer.Argument(help="The account's email")],
) -> None:
    """Print a one-time console link that sets a new password (earlier links stop working)."""
    from helpdesk import audit, password_resets, users
    from helpdesk.config import get_settings
    from helpdesk.tenancy import tenant_scope
    from helpdesk.tenants import get_tenant

    settings = get_settings()

    async def body(pool: Any) -> None:
        t = await get_tenant(pool, tenant)
        async with tenant_scope(pool, t.id) as conn:
            user = await users.get_user_by_email(conn, t.id, email)
            if not user.active:
                raise ValueError(f"{user.email} is disabled; enable the account first")
            token = await password_resets.issue_reset(conn, user, settings.password_reset_ttl_s)
            await audit.record(conn, t.id, audit.Actor("cli"), "user.reset_link", "user", user.id)
        hours = settings.password_reset_ttl_s / 3600
        console.print(
            f"one-time link for {user.email} (valid {hours:g} h, works once):", soft_wrap=True
        )
        print(password_resets.reset_url(settings.public_url, t.slug, token))

    run_with_pool(body)
