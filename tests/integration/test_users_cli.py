"""``deskgraph users``: create (generated or stdin password), list, disable and reset-link,
against the real database, and the accounts it makes signing in over HTTP. Bad input is a
plain message and exit 2."""

from __future__ import annotations

import uuid

import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.support.live_api import bearer
from tests.support.staff import sign_in

pytestmark = pytest.mark.integration


def _run(*args: str, stdin: str | None = None):
    return CliRunner().invoke(app, list(args), input=stdin, catch_exceptions=False)


def test_users_commands_make_accounts_that_sign_in(cli_database, live_api):
    slug = f"cli-{uuid.uuid4().hex[:8]}"
    assert _run("tenant", "create", slug, "--name", "CLI Plumbing").exit_code == 0

    made = _run("users", "create", slug, "Dana@CLI.example", "--name", "Dana", "--role", "admin")
    assert made.exit_code == 0, made.output
    generated = made.output.strip().splitlines()[-1]
    assert len(generated) >= 16 and " " not in generated
    piped = _run(
        "users",
        "create",
        slug,
        "eli@cli.example",
        "--name",
        "Eli",
        "--role",
        "agent",
        "--password-stdin",
        stdin="eli's long password\n",
    )
    assert piped.exit_code == 0 and "eli's long password" not in piped.output

    with live_api.client() as client:
        r = sign_in(client, slug, "dana@cli.example", generated)
        assert r.status_code == 200 and r.json()["user"]["role"] == "admin"
        assert sign_in(client, slug, "eli@cli.example", "eli's long password").status_code == 200

        listed = _run("users", "list", slug)
        assert listed.exit_code == 0
        assert "dana@cli.example" in listed.output and "eli@cli.example" in listed.output

        link = _run("users", "reset-link", slug, "ELI@cli.example")
        assert link.exit_code == 0, link.output
        url = link.output.strip().splitlines()[-1]
        assert f"/console?tenant={slug}#reset=pr_" in url
        r = client.post(
            "/v1/auth/reset",
            json={"token": url.split("#reset=")[1], "password": "eli's newer password"},
        )
        assert r.status_code == 204
        token = sign_in(client, slug, "eli@cli.example", "eli's newer password").json()["token"]

        off = _run("users", "disable", slug, "eli@cli.example")
        assert off.exit_code == 0, off.output
        assert client.get("/v1/agent/me", headers=bearer(token)).status_code == 401
        assert sign_in(client, slug, "eli@cli.example", "eli's newer password").status_code == 401
        audit = client.get(
            "/v1/admin/audit",
            headers=bearer(sign_in(client, slug, "dana@cli.example", generated).json()["token"]),
        ).json()["items"]
        assert {"user.create", "user.reset_link", "user.update"} <= {e["action"] for e in audit}
        assert {e["actor_name"] for e in audit if e["action"].startswith("user.")} >= {"cli"}


@pytest.mark.parametrize(
    ("args", "stdin", "says"),
    [
        (
            ("users", "create", "demo", "not-an-email", "--name", "X", "--role", "agent"),
            None,
            "email",
        ),
        (
            ("users", "create", "demo", "x@cli.example", "--name", "X", "--role", "boss"),
            None,
            "role",
        ),
        (
            (
                "users",
                "create",
                "demo",
                "x@cli.example",
                "--name",
                "X",
                "--role",
                "agent",
                "--password-stdin",
            ),
            "short\n",
            "password",
        ),
        (
            (
                "users",
                "create",
                "no-such-tenant",
                "x@cli.example",
                "--name",
                "X",
                "--role",
                "agent",
            ),
            None,
            "no tenant",
        ),
        (("users", "disable", "demo", "nobody@cli.example"), None, "no user"),
        (("users", "reset-link", "demo", "nobody@cli.example"), None, "no user"),
    ],
)
def test_users_commands_refuse_bad_input_with_exit_2(cli_database, demo, args, stdin, says):
    out = _run(*args, stdin=stdin)
    assert out.exit_code == 2, out.output
    assert "error:" in out.output and says in out.output


def test_creating_the_same_email_twice_is_refused(cli_database, demo):
    email = f"twice-{uuid.uuid4().hex[:6]}@cli.example"
    assert _run("users", "create", "demo", email, "--name", "T", "--role", "agent").exit_code == 0
    again = _run("users", "create", "demo", email.upper(), "--name", "T", "--role", "agent")
    assert again.exit_code == 2 and "already exists" in again.output
