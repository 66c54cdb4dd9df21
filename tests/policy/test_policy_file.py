"""The access policy is checked against the schema at start-up: a mistake stops the server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from core.settings import Settings
from gateway.__main__ import main
from gateway.app import create_app
from gateway.runtime import build_runtime
from policies.access import PolicyError, load_policy
from schema.authorization import is_guarded, validate_policy
from schema.root import build_schema
from tests.conftest import GraphQLClient

VALID = '"Query.products" = { everyone = true }\n'


def _policy(tmp_path: Path, rules: str, extra: str = "") -> Path:
    path = tmp_path / "access.toml"
    path.write_text(f"{extra}\n[rules]\n{rules}", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("rules", "extra", "message"),
    [
        ('"Query.products" = { cashier = true }', "", "unknown role or key(s) ['cashier']"),
        ('"Query.ghost" = { admin = true }', "", "Query has no field 'ghost'"),
        ('"Mutation.ghostMutation" = { anonymous = true }', "", "Mutation has no field 'ghostMutation'"),
        ('"Ghost.field" = { anonymous = true }', "", "no type 'Ghost' in the schema"),
        ('"Query.products" = { customer = "telepathy" }', "", "unknown condition(s) ['telepathy']"),
        (VALID, '[types.Ghost]\npersonal = true\nsubject = "attr:key"\nadmin = true', "no object type 'Ghost'"),
        ('"Node.id" = { admin = true }', "", "Node is an interface"),
        ('"Query.product" = { admin = true, subject = "arg:sku" }', "", "the field has no argument 'sku'"),
        ('"Product.name" = { admin = true, subject = "attr:owner_key" }', "", "'owner_key', which Product objects"),
        (VALID, '[types.Product]\npersonal = true\nsubject = "attr:owner"\nadmin = true', "'owner', which Product"),
        ('"Query.products" = { admin = "yes please" }', "", "unknown condition(s) ['yes please']"),
        ('"Query.products" = { admin = 1 }', "", "give true, false, a condition name"),
        (VALID, '[defaults]\nQuery = "maybe"', "must be one of ['deny', 'public']"),
        ('"Query.products" = { customer = "self | telepathy" }', "", "unknown condition(s) ['telepathy']"),
        ('"Query.products" = { customer = "self | " }', "", "give true, false, a condition name"),
        (VALID, '[changes.Cart]\nsubject = "attr:customer_key"\nagent = "telepathy"', "unknown condition(s)"),
        (VALID, '[changes.Ghost]\nsubject = "attr:key"\nagent = true', "[changes.Ghost]: no object type"),
        (VALID, "[changes.Cart]\nagent = true", "name whose object it is"),
        (VALID, '[changes.Cart]\nsubject = "attr:owner"\nagent = true', "'owner', which Cart objects"),
        (VALID, '[channels]\nTILL = ["staff"]', "[channels]: no channel kind 'TILL'"),
        (VALID, '[channels]\nSTORE = ["cashier"]', "[channels].STORE: unknown role 'cashier'"),
        (VALID, "[channels]\nSTORE = []", "[channels].STORE: give a non-empty list of the roles"),
        (VALID, '[channels]\nSTORE = "staff"', "[channels].STORE: give a non-empty list of the roles"),
    ],
)
def test_a_policy_naming_something_unknown_stops_start_up(
    tmp_path: Path, settings: Settings, rules: str, extra: str, message: str
) -> None:
    with pytest.raises(PolicyError) as failure:
        build_runtime(settings.replace(policy_file=str(_policy(tmp_path, rules, extra))))
    assert message in str(failure.value)


def test_the_server_command_refuses_to_start_on_a_bad_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OMNIGATE_POLICY_FILE", str(_policy(tmp_path, '"Query.products" = { cashier = true }')))
    monkeypatch.setenv("OMNIGATE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    assert main(["serve"]) == 2
    assert "cashier" in capsys.readouterr().err


def test_root_fields_without_a_rule_are_reported_with_their_default(tmp_path: Path) -> None:
    public = validate_policy(
        load_policy(_policy(tmp_path, VALID, '[defaults]\nQuery = "public"')), build_schema()._schema
    )
    assert "Query.channels (default: public)" in public.uncovered
    assert not any(line.startswith("Query.products") for line in public.uncovered)
    silent = validate_policy(load_policy(_policy(tmp_path, VALID)), build_schema()._schema)
    assert "Query.channels (default: deny)" in silent.uncovered  # no [defaults]: refuse, never open


async def test_a_query_with_no_rule_is_refused_when_the_default_is_deny(tmp_path: Path, settings: Settings) -> None:
    runtime = build_runtime(settings.replace(policy_file=str(_policy(tmp_path, VALID))))
    try:
        app = create_app(runtime.settings, runtime=runtime)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
            body = await GraphQLClient(http).execute("{ channels { code } products(first: 1) { edges { cursor } } }")
    finally:
        await runtime.aclose()
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert body["data"] is None  # channels is non-null: the whole answer is withheld, never partial


def test_the_shipped_policy_leaves_the_public_catalog_untouched(runtime) -> None:
    query = runtime.executor.graphql_schema.query_type
    assert not any(is_guarded(query.fields[name]) for name in ("products", "product", "node", "channels"))


def test_the_policy_answers_who_may_run_what() -> None:
    from policies.access import Grant, parse_policy
    from policies.principal import Role

    policy = parse_policy(
        {
            "defaults": {"Query": "public", "Mutation": "deny"},
            "rules": {
                "Query.customer": {"customer": "self", "agent": True, "dpo": ["self", "at_till"]},
                "Mutation.dataSubjectErase": {"everyone": True, "anonymous": False, "customer": False},
            },
        }
    )
    assert policy.grant(Role.AGENT, "Query", "customer") == Grant()
    assert policy.grant(Role.CUSTOMER, "Query", "customer") == Grant(("self",))
    assert policy.grant(Role.DPO, "Query", "customer") == Grant(("self", "at_till"))
    assert policy.grant(Role.STAFF, "Query", "customer") is None
    assert policy.grant(Role.ANONYMOUS, "Query", "products") == Grant()  # public default
    assert policy.grant(Role.ADMIN, "Mutation", "somethingNew") is None  # deny default
    assert policy.grant(Role.CUSTOMER, "Mutation", "dataSubjectErase") is None
    assert policy.grant(Role.DPO, "Mutation", "dataSubjectErase") == Grant()


def test_the_policy_names_who_may_use_each_channel_kind() -> None:
    """`[channels]`: a kind listed is only for its roles; a kind not listed is open to every role."""
    from policies.access import parse_policy
    from policies.principal import Principal, Role

    policy = parse_policy({"channels": {"STORE": ["staff", "admin"], "CALL_CENTER": ["agent", "admin"]}})
    staff, agent = Principal(Role.STAFF, "s", "ST-WAW"), Principal(Role.AGENT, "a")
    customer, anonymous = Principal.customer("1"), Principal(Role.ANONYMOUS)
    assert policy.may_use_channel(staff, "STORE") and not policy.may_use_channel(agent, "STORE")
    assert policy.may_use_channel(agent, "CALL_CENTER") and not policy.may_use_channel(staff, "CALL_CENTER")
    assert not policy.may_use_channel(customer, "STORE") and not policy.may_use_channel(anonymous, "CALL_CENTER")
    assert all(policy.may_use_channel(p, kind) for p in (customer, anonymous) for kind in ("WEB", "MOBILE"))
    assert policy.channel_roles("WEB") is None
    assert policy.channel_roles("STORE") == {Role.STAFF, Role.ADMIN}


def test_the_shipped_policy_keeps_the_operators_channels_for_operators(runtime) -> None:
    from policies.principal import Role

    policy = runtime.services.policy
    assert policy.channel_roles("STORE") == {Role.STAFF, Role.ADMIN}
    assert policy.channel_roles("CALL_CENTER") == {Role.AGENT, Role.ADMIN}
    assert policy.channel_roles("WEB") is None and policy.channel_roles("MOBILE") is None
