"""Own data only, staff at their store, the DPO's requests, and the audit trail they leave.

Orders and data-subject requests are not in the schema yet, so a tiny test-only schema (its own
customers and orders) stands in: strawberry types guarded by the same enforcement
(`schema.authorization.authorize`) and served by the real app, so requests pass the real HTTP,
auth and audit path. The real schema's matrix is tests/test_authorization_matrix.py.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator

import pytest
import strawberry
from graphql import ExecutionResult, GraphQLObjectType, parse, subscribe
from sqlalchemy import select
from strawberry.types import Info

from commerce.catalog.entities import Channel
from core.ids import from_global_id, to_global_id
from gateway.runtime import Runtime
from policies.access import parse_policy
from policies.principal import Principal, Role
from schema.authorization import authorize
from schema.context import Context
from schema.execution import Executor
from schema.node import Node
from tests.test_authorization_matrix import ROLES, Row, World, assert_matrix_row, at_till, only, role_headers
from vault.audit_models import AuditRecord

POLICY = """
[defaults]
Query = "public"
Mutation = "deny"

[audit]
roles = ["staff", "agent", "dpo", "admin"]

[types.Customer]
personal = true
subject = "attr:key"
customer = "self"
staff = "at_till"
agent = true
dpo = true
admin = true

[types.Order]
personal = true
subject = "attr:customer_key"
customer = "self"
staff = "pickup_location"
agent = true
dpo = true
admin = true

[rules]
"Query.node" = { everyone = true }
"Query.me" = { customer = true }
"Query.customer" = { customer = "self", staff = "at_till", agent = true, dpo = true, admin = true, subject = "arg:id:Customer" }
"Query.order" = { customer = true, staff = true, agent = true, dpo = true, admin = true }
"Mutation.dataSubjectErase" = { dpo = true, subject = "arg:customerId:Customer" }
"Subscription.customerChanged" = { customer = "self", agent = true, subject = "arg:customerId:Customer" }
"""


@pytest.fixture
def world(token_for) -> World:
    """The stand-in customers 1001 and 1002 of the test-only schema, one person per role."""
    w = World(headers={}, product_id="")
    w.headers = role_headers(token_for, w)
    return w


@strawberry.type
class Customer(Node):
    id: strawberry.ID
    key: strawberry.Private[str]
    email: str


@strawberry.type
class Order:
    key: strawberry.Private[str]
    customer_key: strawberry.Private[str]
    pickup_location_code: strawberry.Private[str]
    number: str


CUSTOMERS = {
    key: Customer(id=strawberry.ID(to_global_id("Customer", key)), key=key, email=f"{name}@example.com")
    for key, name in (("1001", "anna"), ("1002", "bartek"))
}
ORDERS = {"O-1": Order(key="O-1", customer_key="1001", pickup_location_code="ST-WAW", number="O-1")}


def _customer(global_id: str) -> Customer | None:
    type_name, key = from_global_id(global_id)
    return CUSTOMERS.get(key) if type_name == "Customer" else None


@strawberry.type
class Query:
    @strawberry.field
    def node(self, id: strawberry.ID) -> Node | None:
        return _customer(id)

    @strawberry.field
    def me(self, info: Info) -> Customer | None:
        return CUSTOMERS.get(info.context.principal.subject or "")

    @strawberry.field
    async def customer(self, id: strawberry.ID) -> Customer | None:
        return _customer(id)

    @strawberry.field
    def order(self, id: strawberry.ID) -> Order | None:
        return ORDERS.get(id)


@strawberry.type
class Mutation:
    @strawberry.mutation
    def data_subject_erase(self, customer_id: strawberry.ID) -> bool:
        return _customer(customer_id) is not None

    @strawberry.mutation
    def unruled_mutation(self) -> bool:
        return True


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def customer_changed(self, customer_id: strawberry.ID) -> AsyncIterator[str]:
        yield f"changed {customer_id}"


CUSTOMER_A = "query($id: ID!) { customer(id: $id) { id email } }"
NODE = "query($id: ID!) { node(id: $id) { id ... on Customer { email } } }"
ORDER = 'query { order(id: "O-1") { number } }'
ERASE = "mutation($id: ID!) { dataSubjectErase(customerId: $id) }"
STORE = {"X-Channel": "store"}

OWN_DATA_MATRIX = [
    Row(
        "customer: A's profile (web)",
        CUSTOMER_A,
        lambda w: {"id": w.customer_a_id},
        only("customer_a", "agent", "dpo", "admin"),
    ),
    Row(
        "customer: A's profile at the till",
        CUSTOMER_A,
        lambda w: {"id": w.customer_a_id},
        at_till(only("staff_waw", "staff_krk", "admin")),  # the others may not name the store channel
        headers=STORE,
    ),
    Row("node: A's customer", NODE, lambda w: {"id": w.customer_a_id}, only("customer_a", "agent", "dpo", "admin")),
    Row("node: B's customer", NODE, lambda w: {"id": w.customer_b_id}, only("customer_b", "agent", "dpo", "admin")),
    Row("me", "{ me { email } }", lambda w: {}, only("customer_a", "customer_b")),
    Row(
        "order: A's, collected at ST-WAW", ORDER, lambda w: {}, only("customer_a", "staff_waw", "agent", "dpo", "admin")
    ),
    Row("dataSubjectErase", ERASE, lambda w: {"id": w.customer_a_id}, only("dpo")),
    Row("a mutation with no rule", "mutation { unruledMutation }", lambda w: {}, only()),
]


@pytest.fixture
def own_data_runtime(runtime: Runtime) -> Runtime:
    schema = strawberry.Schema(query=Query, mutation=Mutation, subscription=Subscription, types=[Customer])
    authorize(schema, parse_policy(__import__("tomllib").loads(POLICY)))
    runtime.executor = Executor(schema, runtime.settings)
    return runtime


@pytest.mark.parametrize("row", [pytest.param(r, id=r.name) for r in OWN_DATA_MATRIX])
async def test_own_data_only(row: Row, own_data_runtime: Runtime, gql, world: World) -> None:
    await assert_matrix_row(gql, world, row)
    for role in ROLES:
        if row.expect[role] != "allow":
            response = await gql.post(
                row.document, row.variables(world), headers={**world.headers[role], **row.headers}
            )
            body = response.json()
            assert "@example.com" not in str(body), f"{role}: a denial must carry none of the other party's data"


async def _audit_rows(runtime: Runtime) -> list[AuditRecord]:
    async with runtime.services.sessions() as session:
        return list((await session.scalars(select(AuditRecord).order_by(AuditRecord.seq))).all())


async def test_an_agent_reading_a_customer_is_audited_without_pii(own_data_runtime: Runtime, gql, world: World) -> None:
    await gql.data(
        CUSTOMER_A, {"id": world.customer_a_id}, headers={**world.headers["agent"], "X-Channel": "call-center"}
    )
    rows = await _audit_rows(own_data_runtime)
    assert [(r.actor, r.role, r.channel, r.operation, r.fields, r.subject, r.outcome) for r in rows] == [
        ("agent-1", "agent", "call-center", "query customer", "Customer.email Customer.id", "1001", "allowed"),
        ("agent-1", "agent", "call-center", "query customer", "Query.customer", "1001", "allowed"),
    ]
    assert rows[0].trace_id == rows[1].trace_id and len(rows[0].trace_id) == 32
    assert all("example.com" not in repr(vars(r)) for r in rows)
    assert (await own_data_runtime.services.audit.verify()).checked == 2


async def test_a_customer_reading_their_own_data_leaves_no_audit_record(
    own_data_runtime: Runtime, gql, world: World
) -> None:
    await gql.data(CUSTOMER_A, {"id": world.customer_a_id}, headers=world.headers["customer_a"])
    await gql.data("{ me { email } }", headers=world.headers["customer_a"])
    assert await _audit_rows(own_data_runtime) == []


async def test_a_refused_look_up_by_staff_is_audited_as_denied(own_data_runtime: Runtime, gql, world: World) -> None:
    body = await gql.execute(CUSTOMER_A, {"id": world.customer_a_id}, headers=world.headers["staff_krk"])
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    rows = await _audit_rows(own_data_runtime)
    assert [(r.actor, r.operation, r.subject, r.outcome) for r in rows] == [
        ("staff-krk", "query customer", "1001", "denied")
    ]


async def test_an_agent_attempting_a_data_subject_request_is_audited_as_denied(
    own_data_runtime: Runtime, gql, world: World
) -> None:
    body = await gql.execute(ERASE, {"id": world.customer_b_id}, headers=world.headers["agent"])
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    rows = await _audit_rows(own_data_runtime)
    assert [(r.role, r.operation, r.subject, r.outcome) for r in rows] == [
        ("agent", "mutation dataSubjectErase", "1002", "denied")
    ]


async def test_the_dpo_erasing_a_customer_is_audited(own_data_runtime: Runtime, gql, world: World) -> None:
    await gql.data(ERASE, {"id": world.customer_b_id}, headers=world.headers["dpo"])
    rows = await _audit_rows(own_data_runtime)
    assert [(r.role, r.operation, r.fields, r.subject) for r in rows] == [
        ("dpo", "mutation dataSubjectErase", "Mutation.dataSubjectErase", "1002")
    ]


@pytest.mark.parametrize(
    ("principal", "allowed"),
    [
        (Principal(Role.CUSTOMER, subject="1001"), True),
        (Principal(Role.CUSTOMER, subject="1002"), False),
        (Principal(Role.AGENT, subject="agent-1"), True),
        (Principal(Role.STAFF, subject="s", location="ST-WAW"), False),
    ],
    ids=["A herself", "customer B", "an agent", "staff"],
)
async def test_subscribing_to_another_customers_changes_is_refused(
    own_data_runtime: Runtime, principal: Principal, allowed: bool
) -> None:
    context = Context(
        services=own_data_runtime.services, channel=Channel(1, "web", "Web", "WEB", "PLN"), principal=principal
    )
    document = parse("subscription($id: ID!) { customerChanged(customerId: $id) }")
    stream = subscribe(
        own_data_runtime.executor.graphql_schema,
        document,
        context_value=context,
        variable_values={"id": to_global_id("Customer", "1001")},
    )
    if inspect.isawaitable(stream):
        stream = await stream
    if not allowed:
        assert isinstance(stream, ExecutionResult)
        assert [e.extensions["code"] for e in stream.errors or []] == ["FORBIDDEN"]
        return
    assert not isinstance(stream, ExecutionResult)
    first = await anext(stream)
    assert first.errors is None and first.data == {"customerChanged": f"changed {to_global_id('Customer', '1001')}"}
    await stream.aclose()  # type: ignore[attr-defined]  # graphql-core's stream is an async generator


def test_personal_fields_stay_guarded_under_wrappers_composed_later(own_data_runtime: Runtime) -> None:
    import functools

    from schema.authorization import is_guarded

    gql_schema = own_data_runtime.executor.graphql_schema
    customer = gql_schema.type_map["Customer"]
    assert isinstance(customer, GraphQLObjectType)
    assert is_guarded(customer.fields["email"]) and is_guarded(gql_schema.query_type.fields["customer"])
    inner = customer.fields["email"].resolve
    traced = functools.wraps(inner)(lambda *a, **k: inner(*a, **k))  # as a tracing wrapper would compose
    customer.fields["email"].resolve = traced
    assert is_guarded(customer.fields["email"])
    # A fast path may decide the check once for many objects only where the check is the resolve
    # itself: under a wrapper (a span per call), every call goes through the wrapper and the check.
    from schema.authorization import guard_of

    guard = guard_of(inner)
    assert guard is not None and guard.resolve is inner.__wrapped__
    assert guard_of(traced) is None  # functools.wraps copied the check's attributes, not the check
