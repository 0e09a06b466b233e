"""Contact details and signed identities, with nothing started: email and phone
normalisation (helpdesk/contact_fields.py), the canonical form a business's server signs, and
the freshness window (helpdesk/identity.py), and the contact-offer body's field errors."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import subprocess

import pytest
from pydantic import ValidationError

from api.contact_schemas import ContactOffer, ContactPatch
from helpdesk.contact_fields import (
    email_problem,
    normalize_domain,
    normalize_email,
    normalize_phone,
)
from helpdesk.errors import InvalidInput
from helpdesk.identity import (
    MAX_AGE_S,
    MAX_SKEW_S,
    IdentityExpired,
    InvalidIdentity,
    canonical_user,
    sign_user,
    verify_identity,
)

SECRET = "ids_unit-test-secret-0123456789abcdefghijkl"
NOW = 1_764_755_000


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("Ann.Lee@Example.COM", "ann.lee@example.com"),
        ("  ann+quotes@mail.example.co.uk \n", "ann+quotes@mail.example.co.uk"),
        ("o'brien@example.ie", "o'brien@example.ie"),
    ],
)
def test_emails_are_trimmed_and_lower_cased(raw: str, stored: str) -> None:
    assert normalize_email(raw) == stored


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "ann",
        "ann@",
        "@example.com",
        "ann@example",
        "ann@@example.com",
        "ann lee@example.com",
        "ann@exa mple.com",
        "ann..lee@example.com",
        ".ann@example.com",
        "ann@-example.com",
        "a" * 65 + "@example.com",
        "ann@" + "x" * 250 + ".com",
    ],
)
def test_what_is_not_an_email_is_refused_with_a_reason(raw: str) -> None:
    assert email_problem(raw)
    with pytest.raises(InvalidInput, match=r"^email "):
        normalize_email(raw)


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("+1 (555) 010-0123", "+15550100123"),
        ("0044 20 7946 0958", "+442079460958"),
        ("555.010.0123", "5550100123"),
        ("030 / 123 456", "030123456"),
        ("  +49-30-1234567 ", "+49301234567"),
    ],
)
def test_phones_keep_their_digits_and_the_plus(raw: str, stored: str) -> None:
    assert normalize_phone(raw) == stored


def test_the_same_phone_typed_two_ways_is_one_number() -> None:
    assert normalize_phone("+1 555 010 0123") == normalize_phone("+1-555-010-0123")
    # No country is assumed: without its code the number stays another one.
    assert normalize_phone("555 010 0123") != normalize_phone("+1 555 010 0123")


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("call me", "digits"),
        ("555-CALL-NOW", "digits"),
        ("12345", "6 to 15 digits"),
        ("+1234567890123456", "6 to 15 digits"),
        ("٥٥٥٠١٠٠١٢٣", "digits"),  # Arabic-Indic digits: isdigit() but not what we store
        ("+", "6 to 15 digits"),
    ],
)
def test_what_is_not_a_phone_is_refused_with_a_reason(raw: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        normalize_phone(raw)


def test_domains_lose_scheme_www_and_path() -> None:
    assert normalize_domain("https://www.Example.com/about") == "example.com"
    assert normalize_domain("acme.co.uk") == "acme.co.uk"
    with pytest.raises(InvalidInput):
        normalize_domain("not a domain")


def test_the_contact_offer_names_the_wrong_field() -> None:
    with pytest.raises(ValidationError) as bad_email:
        ContactOffer.model_validate({"name": "Ann", "email": "ann-at-example.com"})
    assert [e["loc"] for e in bad_email.value.errors()] == [("email",)]
    with pytest.raises(ValidationError) as bad_phone:
        ContactOffer.model_validate({"phone": "call me maybe"})
    assert [e["loc"] for e in bad_phone.value.errors()] == [("phone",)]
    with pytest.raises(ValidationError, match="email or a phone"):
        ContactOffer.model_validate({"name": "Ann"})
    assert ContactOffer.model_validate({"email": "ann@example.com"}).email == "ann@example.com"


def test_a_contact_patch_sets_only_what_it_names() -> None:
    assert ContactPatch.model_validate({"phone": None, "notes": "VIP"}).changes() == {
        "phone": None,
        "notes": "VIP",
    }
    with pytest.raises(ValidationError, match="name cannot be null"):
        ContactPatch.model_validate({"name": None})


# ----------------------------------------------------------------------- identity


def _user(**extra: object) -> dict[str, object]:
    return {"email": "ann@example.com", "name": "Ann Lee", "iat": NOW, **extra}


def test_the_canonical_form_is_sorted_compact_utf8_json() -> None:
    user = {"name": "Zoë Ávila", "iat": NOW, "email": "zoe@example.com", "user_id": "u-7"}
    assert (
        canonical_user(user)
        == (
            '{"email":"zoe@example.com","iat":1764755000,"name":"Zoë Ávila","user_id":"u-7"}'
        ).encode()
    )
    # What the docs tell a business's server to compute, byte for byte.
    documented = hmac.new(
        SECRET.encode(),
        json.dumps(user, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(),
        hashlib.sha256,
    ).hexdigest()
    assert sign_user(SECRET, user) == documented
    # Key order in the sent object does not matter; the values do.
    assert sign_user(SECRET, dict(reversed(list(user.items())))) == documented
    assert sign_user(SECRET, {**user, "name": "Zoe Avila"}) != documented


def test_the_escapes_match_what_javascript_writes() -> None:
    # JSON.stringify({"iat":1,"name":"a\"b\\c\nd\u0001é"}) in a browser gives exactly this.
    user = {"iat": 1, "name": 'a"b\\c\nd\x01é'}
    assert canonical_user(user) == b'{"iat":1,"name":"a\\"b\\\\c\\nd\\u0001\xc3\xa9"}'


@pytest.mark.parametrize(
    ("user", "why"),
    [
        ({"email": "ann@example.com"}, "iat"),
        (_user(iat="1764755000"), "iat must be an integer"),
        (_user(iat=True), "iat must be an integer"),
        (_user(iat=1.5), "iat must be an integer"),
        (_user(plan={"tier": "gold"}), "plan must be a string"),
        (_user(vip=True), "vip must be a string"),
        (_user(Email="x"), "lower-case"),
        ({**{f"k{i}": "v" for i in range(20)}, "iat": NOW}, "at most 20"),
    ],
)
def test_a_user_object_of_another_shape_is_never_signed(user: dict, why: str) -> None:
    with pytest.raises(InvalidIdentity, match=why):
        canonical_user(user)


def test_a_good_signature_vouches_for_the_user() -> None:
    user = _user(user_id="site-42", phone="+1 555 010 0123")
    who = verify_identity(SECRET, user, sign_user(SECRET, user), now=NOW + 5)
    assert (who.email, who.name, who.user_id, who.phone) == (
        "ann@example.com",
        "Ann Lee",
        "site-42",
        "+1 555 010 0123",
    )
    # Upper-case hex is the same signature.
    assert verify_identity(SECRET, user, sign_user(SECRET, user).upper(), now=NOW).email


@pytest.mark.parametrize(
    "forge",
    [
        lambda u, s: ({**u, "email": "mallory@example.com"}, s),  # another user, same signature
        lambda u, s: (u, sign_user("ids_some-other-tenants-secret-0123456789ab", u)),
        lambda u, s: (u, s[:-1] + ("0" if s[-1] != "0" else "1")),
        lambda u, s: (u, ""),
        lambda u, s: (u, "not hex at all"),
        lambda u, s: ({**u, "iat": NOW + 1}, s),  # re-dated
    ],
)
def test_a_forged_signature_is_invalid(forge) -> None:
    user = _user()
    forged_user, forged_sig = forge(user, sign_user(SECRET, user))
    with pytest.raises(InvalidIdentity, match="does not match"):
        verify_identity(SECRET, forged_user, forged_sig, now=NOW)


def test_no_secret_means_no_identity_is_accepted() -> None:
    with pytest.raises(InvalidIdentity, match="not set up"):
        verify_identity(None, _user(), "0" * 64, now=NOW)


def test_freshness_window() -> None:
    user = _user()
    sig = sign_user(SECRET, user)
    assert verify_identity(SECRET, user, sig, now=NOW + MAX_AGE_S)
    assert verify_identity(SECRET, user, sig, now=NOW - MAX_SKEW_S)
    with pytest.raises(IdentityExpired, match="signed 601 s ago"):
        verify_identity(SECRET, user, sig, now=NOW + MAX_AGE_S + 1)
    with pytest.raises(IdentityExpired, match="in the future"):
        verify_identity(SECRET, user, sig, now=NOW - MAX_SKEW_S - 1)


def test_an_old_forgery_is_invalid_not_expired() -> None:
    user = _user()
    with pytest.raises(InvalidIdentity):
        verify_identity(SECRET, user, "ab" * 32, now=NOW + 10 * MAX_AGE_S)


def test_a_signed_user_without_email_or_phone_is_refused() -> None:
    user = {"name": "Ann", "user_id": "42", "iat": NOW}
    with pytest.raises(InvalidIdentity, match="email or a phone"):
        verify_identity(SECRET, user, sign_user(SECRET, user), now=NOW)


JS_SIGNER = """
const crypto = require("crypto");
function signIdentity(user, secret) {
  const sorted = Object.fromEntries(Object.keys(user).sort().map((k) => [k, user[k]]));
  const signature = crypto
    .createHmac("sha256", secret)
    .update(JSON.stringify(sorted), "utf8")
    .digest("hex");
  return { user, signature };
}
const [user, secret] = JSON.parse(require("fs").readFileSync(0, "utf8"));
process.stdout.write(signIdentity(user, secret).signature);
"""
"""The JavaScript signer of docs/http-api.md, as a business's Node server runs it."""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the JS signer")
def test_the_documented_javascript_signer_agrees_with_the_server() -> None:
    user = {"name": 'Zoë "Z" Ávila\n\t\x01', "email": "zoe@example.com", "iat": NOW, "id": "7"}
    out = subprocess.run(
        ["node", "-e", JS_SIGNER],
        input=json.dumps([user, SECRET]),
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert out.stdout == sign_user(SECRET, user)
