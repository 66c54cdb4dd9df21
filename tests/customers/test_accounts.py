"""Registering, signing in and reading one's own profile through the GraphQL API."""

from __future__ import annotations

from datetime import timedelta

import pytest

from commerce.customers.service import LOCK_AFTER_FAILURES
from tests.customers.helpers import REGISTER, SIGN_IN, register, sign_in

ME = "{ me { id email firstName lastName phone addresses { name line1 line2 postalCode city country } } }"


async def test_a_registered_customer_signs_in_and_reads_their_own_profile(gql):
    created = await register(gql, "  Ada@Example.COM ", phone="+48 (600) 123-456")
    assert created["email"] == "ada@example.com"
    assert created["phone"] == "+48600123456"
    me = (await gql.data(ME, headers=await sign_in(gql, "ADA@example.com")))["me"]
    assert me == {
        "id": created["id"],
        "email": "ada@example.com",
        "firstName": "Ada",
        "lastName": "Lovelace",
        "phone": "+48600123456",
        "addresses": [],
    }


async def test_the_token_lives_as_long_as_the_setting_says(gql, clock, settings):
    await register(gql, "ttl@example.com")
    payload = await gql.data(SIGN_IN, {"email": "ttl@example.com", "password": "correct horse battery"})
    expires = payload["customerAccessTokenCreate"]["accessToken"]["expiresAt"]
    expected = clock.now().replace(microsecond=0) + timedelta(seconds=settings.customer_token_ttl_seconds)
    assert expires.startswith(expected.isoformat()[:19])


async def test_registration_reports_every_problem_with_a_stable_code(gql):
    data = await gql.data(
        REGISTER,
        {"input": {"email": "not-an-email", "password": "short", "firstName": " ", "lastName": "X", "phone": "12"}},
    )
    errors = data["customerRegister"]["userErrors"]
    assert data["customerRegister"]["customer"] is None
    assert {(e["code"], tuple(e["field"])) for e in errors} == {
        ("INVALID_EMAIL", ("input", "email")),
        ("PASSWORD_TOO_SHORT", ("input", "password")),
        ("INVALID_NAME", ("input", "firstName")),
        ("INVALID_PHONE", ("input", "phone")),
    }
    assert all("not-an-email" not in e["message"] for e in errors)


async def test_control_characters_are_refused_in_an_email_and_a_name(gql):
    data = await gql.data(
        REGISTER,
        {
            "input": {
                "email": "a\x01b@example.com",
                "password": "correct horse battery",
                "firstName": "\x07",
                "lastName": "Nowak\x1b[2J",
            }
        },
    )
    errors = data["customerRegister"]["userErrors"]
    assert {(e["code"], e["field"][-1]) for e in errors} == {
        ("INVALID_EMAIL", "email"),
        ("INVALID_NAME", "firstName"),
        ("INVALID_NAME", "lastName"),
    }


async def test_an_email_can_hold_only_one_account_whatever_its_case(gql):
    await register(gql, "twice@example.com")
    data = await gql.data(
        REGISTER,
        {"input": {"email": "TWICE@example.com ", "password": "another password", "firstName": "B", "lastName": "C"}},
    )
    assert [e["code"] for e in data["customerRegister"]["userErrors"]] == ["EMAIL_TAKEN"]


async def test_wrong_password_and_unknown_email_get_the_same_answer(gql):
    await register(gql, "known@example.com")
    wrong = await gql.data(SIGN_IN, {"email": "known@example.com", "password": "not the password"})
    unknown = await gql.data(SIGN_IN, {"email": "nobody@example.com", "password": "not the password"})
    assert wrong == unknown
    assert wrong["customerAccessTokenCreate"]["accessToken"] is None
    assert [e["code"] for e in wrong["customerAccessTokenCreate"]["userErrors"]] == ["INVALID_CREDENTIALS"]


async def test_repeated_failures_lock_the_account_even_for_the_right_password_until_the_lock_ends(gql, clock):
    await register(gql, "target@example.com")
    for _ in range(LOCK_AFTER_FAILURES):
        data = await gql.data(SIGN_IN, {"email": "target@example.com", "password": "guess guess"})
        assert data["customerAccessTokenCreate"]["userErrors"][0]["code"] == "INVALID_CREDENTIALS"
    locked = await gql.data(SIGN_IN, {"email": "target@example.com", "password": "correct horse battery"})
    assert locked["customerAccessTokenCreate"]["accessToken"] is None
    assert locked["customerAccessTokenCreate"]["userErrors"][0]["code"] == "TOO_MANY_ATTEMPTS"

    clock.advance(timedelta(seconds=31))
    await sign_in(gql, "target@example.com")  # the lock ended; success resets the counter
    data = await gql.data(SIGN_IN, {"email": "target@example.com", "password": "guess guess"})
    assert data["customerAccessTokenCreate"]["userErrors"][0]["code"] == "INVALID_CREDENTIALS"


async def test_each_further_failure_doubles_the_lock(gql, clock):
    await register(gql, "slow@example.com")
    for _ in range(LOCK_AFTER_FAILURES):
        await gql.data(SIGN_IN, {"email": "slow@example.com", "password": "guess guess"})
    clock.advance(timedelta(seconds=31))
    await gql.data(SIGN_IN, {"email": "slow@example.com", "password": "guess again"})  # failure 6: 60 s
    clock.advance(timedelta(seconds=45))
    still = await gql.data(SIGN_IN, {"email": "slow@example.com", "password": "correct horse battery"})
    assert still["customerAccessTokenCreate"]["userErrors"][0]["code"] == "TOO_MANY_ATTEMPTS"
    clock.advance(timedelta(seconds=16))
    await sign_in(gql, "slow@example.com")


async def test_the_demo_customer_is_seeded(gql):
    me = (await gql.data(ME, headers=await sign_in(gql, "demo@example.com", "demo-password")))["me"]
    assert (me["email"], me["firstName"], me["lastName"]) == ("demo@example.com", "Demo", "Customer")
    assert me["addresses"][0]["city"] == "Warszawa"


async def test_me_is_null_without_a_customer_token(gql, token_for):
    assert (await gql.data("{ me { id } }"))["me"] is None
    assert (await gql.data("{ me { id } }", headers=token_for("agent")))["me"] is None


async def test_a_customer_adds_an_address_to_their_address_book(gql):
    headers = await sign_in(gql, (await register(gql, "home@example.com"))["email"])
    add = """mutation($input: AddressInput!) { customerAddressAdd(input: $input) {
        customer { addresses { name line1 line2 postalCode city country } } userErrors { code field } } }"""
    home = {
        "name": "Ada Lovelace",
        "line1": "ul. Długa 5",
        "line2": None,
        "postalCode": "80-001",
        "city": "Gdańsk",
        "country": "pl",
    }
    data = await gql.data(add, {"input": home}, headers=headers)
    assert data["customerAddressAdd"]["customer"]["addresses"] == [{**home, "country": "PL"}]
    bad = await gql.data(add, {"input": {**home, "country": "Poland"}}, headers=headers)
    assert bad["customerAddressAdd"]["userErrors"] == [{"code": "INVALID_ADDRESS", "field": ["input", "country"]}]
    bad = await gql.data(add, {"input": {**home, "city": "Gdańsk\x1b"}}, headers=headers)
    assert bad["customerAddressAdd"]["userErrors"] == [{"code": "INVALID_ADDRESS", "field": ["input", "city"]}]
    assert len((await gql.data(ME, headers=headers))["me"]["addresses"]) == 1


async def test_an_erased_customer_reads_placeholders_not_errors_and_their_token_stops_working(
    gql, engine, runtime, token_for
):
    from commerce.customers.service import erase
    from core.ids import from_global_id

    created = await register(gql, "gone@example.com", phone="+48 600 999 999")
    headers = await sign_in(gql, "gone@example.com")
    assert (await gql.data("{ me { id } }", headers=headers))["me"]["id"] == created["id"]
    await erase(engine, runtime.services.vault, int(from_global_id(created["id"])[1]))
    runtime.erased.forget()  # what the erasure request does (and broadcasts to other replicas)
    refused = await gql.post("{ me { id } }", headers=headers)
    assert refused.status_code == 401 and refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    query = "query($id: ID!) { customer(id: $id) { id email firstName lastName phone erased addresses { city } } }"
    seen = (await gql.data(query, {"id": created["id"]}, headers=token_for("agent")))["customer"]
    assert seen == {
        "id": created["id"],
        "email": "[erased]",
        "firstName": "[erased]",
        "lastName": "[erased]",
        "phone": "[erased]",
        "erased": True,
        "addresses": [],
    }
    failed = await gql.data(SIGN_IN, {"email": "gone@example.com", "password": "correct horse battery"})
    assert failed["customerAccessTokenCreate"]["userErrors"][0]["code"] == "INVALID_CREDENTIALS"


async def test_two_simultaneous_registrations_of_one_email_make_one_account(gql):
    import asyncio

    variables = {
        "input": {"email": "race@example.com", "password": "correct horse battery", "firstName": "R", "lastName": "C"}
    }
    results = await asyncio.gather(*(gql.data(REGISTER, variables) for _ in range(3)))
    codes = sorted(e["code"] for r in results for e in r["customerRegister"]["userErrors"])
    assert codes == ["EMAIL_TAKEN", "EMAIL_TAKEN"]
    assert sum(r["customerRegister"]["customer"] is not None for r in results) == 1


async def test_a_burst_of_parallel_guesses_checks_no_more_passwords_than_the_lock_allows(gql):
    import asyncio

    await register(gql, "burst@example.com")
    guesses = [gql.data(SIGN_IN, {"email": "burst@example.com", "password": f"guess number {n}"}) for n in range(12)]
    codes = [r["customerAccessTokenCreate"]["userErrors"][0]["code"] for r in await asyncio.gather(*guesses)]
    assert codes.count("INVALID_CREDENTIALS") == LOCK_AFTER_FAILURES
    assert codes.count("TOO_MANY_ATTEMPTS") == 12 - LOCK_AFTER_FAILURES
    locked = await gql.data(SIGN_IN, {"email": "burst@example.com", "password": "correct horse battery"})
    assert locked["customerAccessTokenCreate"]["userErrors"][0]["code"] == "TOO_MANY_ATTEMPTS"


async def test_an_email_is_one_account_whatever_its_unicode_form(gql):
    import unicodedata

    composed = unicodedata.normalize("NFC", "zoë@example.com")
    created = await register(gql, composed)
    for variant in (unicodedata.normalize("NFD", composed), "ＺＯË@example.com"):
        again = await gql.data(
            REGISTER, {"input": {"email": variant, "password": "another password", "firstName": "B", "lastName": "C"}}
        )
        assert [e["code"] for e in again["customerRegister"]["userErrors"]] == ["EMAIL_TAKEN"]
        headers = await sign_in(gql, variant)
        assert (await gql.data("{ me { id email } }", headers=headers))["me"] == {
            "id": created["id"],
            "email": composed,
        }


async def test_after_erasure_the_email_is_free_for_a_new_account_and_signs_in_to_it(gql, engine, runtime):
    from commerce.customers.service import erase
    from core.ids import from_global_id

    old = await register(gql, "again@example.com", first="Old")
    await erase(engine, runtime.services.vault, int(from_global_id(old["id"])[1]))
    new = await register(gql, "AGAIN@example.com", first="New")
    assert new["id"] != old["id"]
    me = (await gql.data("{ me { id firstName } }", headers=await sign_in(gql, "again@example.com")))["me"]
    assert me == {"id": new["id"], "firstName": "New"}


async def test_two_addresses_added_at_once_from_two_devices_are_both_kept(gql):
    import asyncio

    headers = await sign_in(gql, (await register(gql, "two-devices@example.com"))["email"])
    add = "mutation($input: AddressInput!) { customerAddressAdd(input: $input) { userErrors { code } } }"
    cities = [f"City {n}" for n in range(4)]
    results = await asyncio.gather(
        *(
            gql.data(
                add,
                {
                    "input": {
                        "name": "Ada",
                        "line1": "ul. Długa 5",
                        "postalCode": "80-001",
                        "city": city,
                        "country": "PL",
                    }
                },
                headers=headers,
            )
            for city in cities
        )
    )
    assert [r["customerAddressAdd"]["userErrors"] for r in results] == [[]] * 4
    kept = (await gql.data(ME, headers=headers))["me"]["addresses"]
    assert sorted(a["city"] for a in kept) == cities


async def test_a_full_address_book_says_so(gql):
    from commerce.customers.service import MAX_ADDRESSES

    headers = await sign_in(gql, (await register(gql, "full-book@example.com"))["email"])
    add = """mutation($input: AddressInput!) { customerAddressAdd(input: $input) { userErrors { code field message } } }"""
    home = {"name": "Ada", "line1": "ul. Długa 5", "postalCode": "80-001", "city": "Gdańsk", "country": "PL"}
    for _ in range(MAX_ADDRESSES):
        assert (await gql.data(add, {"input": home}, headers=headers))["customerAddressAdd"]["userErrors"] == []
    [error] = (await gql.data(add, {"input": home}, headers=headers))["customerAddressAdd"]["userErrors"]
    assert (error["code"], error["field"]) == ("TOO_MANY_ADDRESSES", None)
    assert str(MAX_ADDRESSES) in error["message"]


INVISIBLE_OR_REVERSED = {
    "zero-width spaces only": "\u200b\u200b\u200b",
    "a right-to-left override": "Ada\u202egnp.exe",
    "a bidirectional isolate": "\u2067Ada\u2069",
    "a soft hyphen and a word joiner only": "\u00ad\u2060",
    "Hangul fillers only": "\u3164\u3164",
    "braille blanks only": "\u2800\u2800",
    "ideographic spaces only": "\u3000\u3000",
    "a line separator": "Ada\u2028Nowak",
    "private use": "Ada\ue000",
}


@pytest.mark.parametrize("name", list(INVISIBLE_OR_REVERSED.values()), ids=list(INVISIBLE_OR_REVERSED))
async def test_a_name_or_address_line_a_person_cannot_read_as_written_is_refused(gql, name: str) -> None:
    data = await gql.data(
        REGISTER,
        {
            "input": {
                "email": "ada@example.com",
                "password": "correct horse battery",
                "firstName": name,
                "lastName": name,
            }
        },
    )
    errors = data["customerRegister"]["userErrors"]
    assert {(e["code"], e["field"][-1]) for e in errors} == {
        ("INVALID_NAME", "firstName"),
        ("INVALID_NAME", "lastName"),
    }
    headers = await sign_in(gql, (await register(gql, "home@example.com"))["email"])
    add = "mutation($input: AddressInput!) { customerAddressAdd(input: $input) { userErrors { code field } } }"
    address = {"name": name, "line1": "Prosta 1", "postalCode": "00-001", "city": name, "country": "PL"}
    errors = (await gql.data(add, {"input": address}, headers=headers))["customerAddressAdd"]["userErrors"]
    assert errors == [{"code": "INVALID_ADDRESS", "field": ["input", "name"]}]


@pytest.mark.parametrize("name", ["Zoë", "محمد", "क्षत्रिय", "O'Neil-Smith", "李 小龙", "\u0915\u094d\u200d\u0937"])
async def test_names_in_any_script_are_accepted(gql, name: str) -> None:
    data = await gql.data(
        REGISTER,
        {
            "input": {
                "email": "ada@example.com",
                "password": "correct horse battery",
                "firstName": name,
                "lastName": name,
            }
        },
    )
    assert data["customerRegister"]["userErrors"] == []
    assert data["customerRegister"]["customer"]["firstName"] == name


async def test_the_lock_answers_alike_whether_or_not_the_email_has_an_account(gql):
    """Failures on an unknown email count and lock exactly like those on a known one."""
    await register(gql, "known@example.com")
    answers: dict[str, list[dict]] = {"known@example.com": [], "nobody@example.com": []}
    for email, seen in answers.items():
        for _ in range(LOCK_AFTER_FAILURES + 2):
            seen.append(await gql.data(SIGN_IN, {"email": email, "password": "guess guess"}))
    assert answers["known@example.com"] == answers["nobody@example.com"]
    codes = [a["customerAccessTokenCreate"]["userErrors"][0]["code"] for a in answers["nobody@example.com"]]
    assert codes == ["INVALID_CREDENTIALS"] * LOCK_AFTER_FAILURES + ["TOO_MANY_ATTEMPTS"] * 2


async def test_a_stranger_failing_on_purpose_does_not_lock_the_owner_out(gql, runtime):
    """The lock is per (account, client): the owner signs in from their own address meanwhile."""
    import httpx

    from gateway.app import create_app
    from tests.conftest import GraphQLClient

    await register(gql, "owner@example.com")
    app = create_app(runtime.settings, runtime=runtime)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        stranger = GraphQLClient(http)
        for _ in range(LOCK_AFTER_FAILURES + 3):
            await stranger.data(SIGN_IN, {"email": "owner@example.com", "password": "guess guess"})
        locked = await stranger.data(SIGN_IN, {"email": "owner@example.com", "password": "correct horse battery"})
        assert locked["customerAccessTokenCreate"]["userErrors"][0]["code"] == "TOO_MANY_ATTEMPTS"
    await sign_in(gql, "owner@example.com")  # the owner, from another address: not locked


async def test_the_sign_in_bookkeeping_holds_no_email_and_no_address(gql, engine):
    from sqlalchemy import text

    for _ in range(2):
        await gql.data(SIGN_IN, {"email": "nobody@example.com", "password": "guess guess"})
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM sign_in_throttles"))).all()
    assert len(rows) == 1 and rows[0].failures == 2
    assert "nobody" not in str(rows) and "127.0.0.1" not in str(rows)


async def test_the_sign_in_bookkeeping_joins_no_account_and_lets_no_address_be_guessed(gql, engine):
    """The row keeps an index of the email so that an erasure finds it. Were that the email's blind
    index itself, a reader of the table could join it to the vault's look-ups (whose account is
    being tried), and test guesses of the client's address against the key, which hashes the two
    (every IPv4 address is only 2^32 guesses): for an unknown email too."""
    import hashlib

    from sqlalchemy import text

    await register(gql, "owner.tried@example.com")
    for email in ("owner.tried@example.com", "nobody.tried@example.com"):
        await gql.data(SIGN_IN, {"email": email, "password": "guess guess"})
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT key, email_index FROM sign_in_throttles"))).all()
        digests = {bytes(d) for d in (await conn.execute(text("SELECT digest FROM vault_lookups"))).scalars()}
    assert len(rows) == 2
    for row in rows:
        assert bytes(row.email_index) not in digests
        assert hashlib.sha256(bytes(row.email_index) + b"\x00127.0.0.1").hexdigest() != row.key
