"""Customers and consent in the API: registration, sign-in, `me`, `customer(id)`, consent.

Personal data is decrypted in batches by the per-request loaders (one query for the rows and
one for their data keys per batch). A customer whose data was erased (crypto-shredded) reads
as `ERASED_PLACEHOLDER` in every personal field, never as an error.

Who may read a customer is not decided here: policies/access.toml says it, and
schema/authorization.py enforces it on every `Customer` field and root field.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.types import Info

from commerce.customers import errors as customer_errors
from commerce.customers import service
from commerce.customers.service import Profile
from commerce.loyalty import service as loyalty
from commerce.recommendations import service as recommendations
from core.ids import int_key, to_global_id
from policies.principal import Principal, Role
from schema.cart import Cart, customer_cart
from schema.catalog import Product
from schema.errors import UserError, bad_input, forbidden, unauthenticated, user_error
from schema.loyalty import LoyaltyAccount, loyalty_account
from schema.node import Node, decode_int_id, register_node
from schema.offers import PersonalOffer, offers_of
from schema.pagination import check_first
from schema.ratelimits import limit
from schema.sessions import issue_customer_token
from vault.cipher import ERASED
from vault.errors import VaultError

if TYPE_CHECKING:
    from schema.orders import OrderConnection

__all__ = ["ERASED_PLACEHOLDER", "Address", "Consent", "Customer", "CustomerMutation", "CustomerQuery"]

ERASED_PLACEHOLDER = "[erased]"
OPERATOR_ROLES = frozenset({Role.STAFF, Role.AGENT, Role.DPO, Role.ADMIN})
CONSENT_ON_BEHALF_ROLES = frozenset({Role.AGENT, Role.ADMIN})
MAX_CUSTOMERS_PER_QUERY = 100
MAX_RECOMMENDATIONS = 20


def _signed_in_customer(principal: Principal) -> int:
    """The signed-in customer's key: anonymous callers sign in first; operators are not customers."""
    if principal.is_anonymous:
        raise unauthenticated("Sign in as a customer first.")
    key = int_key(principal.subject or "") if principal.role is Role.CUSTOMER else None
    if key is None:
        raise forbidden("Only a signed-in customer can do this for themself; operators name the customer.")
    return key


# ---------------------------------------------------------------- types
def _shown(value: Any) -> Any:
    return ERASED_PLACEHOLDER if value is ERASED else value


@strawberry.type
class Address:
    name: str
    line1: str
    line2: str | None
    postal_code: str
    city: str
    country: str = strawberry.field(description="ISO 3166-1 alpha-2, e.g. PL.")

    @classmethod
    def of(cls, a: service.Address) -> Address:
        return cls(name=a.name, line1=a.line1, line2=a.line2, postal_code=a.postal_code, city=a.city, country=a.country)


@strawberry.input
class AddressInput:
    name: str
    line1: str
    line2: str | None = None
    postal_code: str
    city: str
    country: str


@strawberry.type(description="One consent decision; `consents` shows the latest per purpose, `consentHistory` all.")
class Consent:
    purpose: str
    granted: bool
    updated_at: datetime
    channel: str = strawberry.field(description="The code of the channel it was given through, e.g. web.")
    policy_version: str = strawberry.field(description="The privacy notice version in force when it was given.")
    method: str = strawberry.field(description='How it was given, e.g. "self-service via api".')

    @classmethod
    def of(cls, c: Any) -> Consent:
        return cls(
            purpose=c.purpose,
            granted=c.granted,
            updated_at=c.recorded_at,
            channel=c.channel,
            policy_version=c.policy_version,
            method=c.method,
        )


async def _profile(info: Info, key: int) -> Profile:
    profile = await info.context.loaders.customer_profiles.load(key)
    if profile is None:
        raise LookupError("customer vanished during the request")
    return profile


@strawberry.type(description=f"Personal fields read {ERASED_PLACEHOLDER!r} once the customer's data was erased.")
class Customer(Node):
    id: strawberry.ID
    key: strawberry.Private[int]

    @classmethod
    def of(cls, key: int) -> Customer:
        return cls(id=strawberry.ID(to_global_id("Customer", key)), key=key)

    @strawberry.field
    async def email(self, info: Info) -> str:
        return _shown((await _profile(info, self.key)).email)

    @strawberry.field
    async def first_name(self, info: Info) -> str:
        return _shown((await _profile(info, self.key)).first_name)

    @strawberry.field
    async def last_name(self, info: Info) -> str:
        return _shown((await _profile(info, self.key)).last_name)

    @strawberry.field
    async def phone(self, info: Info) -> str | None:
        return _shown((await _profile(info, self.key)).phone)

    @strawberry.field(description="Empty once erased.")
    async def addresses(self, info: Info) -> list[Address]:
        addresses = (await _profile(info, self.key)).addresses
        return [] if addresses is ERASED else [Address.of(a) for a in addresses]  # type: ignore[union-attr]

    @strawberry.field(description="True once the customer's personal data was erased (crypto-shredded).")
    async def erased(self, info: Info) -> bool:
        return (await _profile(info, self.key)).erased

    @strawberry.field(description="The current decision per purpose (purposes never decided are absent).")
    async def consents(self, info: Info) -> list[Consent]:
        return [Consent.of(c) for c in await info.context.loaders.customer_consents.load(self.key)]

    @strawberry.field(description="Every consent decision ever recorded, oldest first: the proof of consent.")
    async def consent_history(self, info: Info) -> list[Consent]:
        return [Consent.of(c) for c in await info.context.loaders.customer_consent_history.load(self.key)]

    @strawberry.field(description="The customer's active cart: the same on every device and channel.")
    async def cart(self, info: Info) -> Cart | None:
        return await customer_cart(info, self.key)

    @strawberry.field(
        description="Products often bought together with what the customer bought, in any channel; "
        "empty unless they consent to PERSONALIZATION (asked on every request)."
    )
    async def recommendations(self, info: Info, first: int | None = 5) -> list[Product]:
        limit = check_first(first, MAX_RECOMMENDATIONS)
        services = info.context.services
        keys = await recommendations.recommend(services.engine, services.vault, self.key, limit)
        found = await info.context.loaders.products.load_many(keys)
        return [Product.of(p) for p in found if p is not None]

    @strawberry.field(description="Promotions meant for this customer now, in this channel (personal offers).")
    async def offers(self, info: Info) -> list[PersonalOffer]:
        return await offers_of(info, self.key)

    @strawberry.field(description="Points, tier and card: one account, the same in every channel.")
    async def loyalty(self, info: Info) -> LoyaltyAccount:
        return await loyalty_account(info, self.key, (await _profile(info, self.key)).subject)

    @strawberry.field(description="Web, mobile, store and call-center orders together, newest first.")
    async def orders(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> Annotated[OrderConnection, strawberry.lazy("schema.orders")]:
        from schema.orders import customer_orders

        return await customer_orders(info, self.key, first, after)


async def _existing(info: Info, key: int) -> Customer | None:
    return Customer.of(key) if await info.context.loaders.customer_profiles.load(key) is not None else None


@register_node("Customer")
async def _customer_node(info: Info, key: str) -> Customer | None:
    number = int_key(key)
    return await _existing(info, number) if number is not None else None


@strawberry.input
class CustomerRegisterInput:
    email: str
    password: str
    first_name: str
    last_name: str
    phone: str | None = None


@strawberry.input(description="Rectification (GDPR Art. 16): null leaves a field unchanged; an empty phone removes it.")
class CustomerUpdateInput:
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None


@strawberry.type
class CustomerPayload:
    customer: Customer | None
    user_errors: list[UserError]


@strawberry.type
class AccessToken:
    token: str
    expires_at: datetime


@strawberry.type
class AccessTokenPayload:
    access_token: AccessToken | None
    user_errors: list[UserError]


@strawberry.type
class ConsentPayload:
    consents: list[Consent]
    user_errors: list[UserError]


# ---------------------------------------------------------------- roots
@strawberry.type
class CustomerQuery:
    @strawberry.field(description="The signed-in customer.")
    async def me(self, info: Info) -> Customer | None:
        principal = info.context.principal
        if principal.role is not Role.CUSTOMER:
            return None
        return await _existing(info, _signed_in_customer(principal))

    @strawberry.field(description="Staff, agents and the DPO; a customer may ask for themself only.")
    async def customer(self, info: Info, id: strawberry.ID) -> Customer | None:
        key = decode_int_id(id, "Customer")
        return await _existing(info, key)

    @strawberry.field(
        description=f"Staff, agents and the DPO: up to {MAX_CUSTOMERS_PER_QUERY} customers at once, "
        "in the order asked (null for unknown ids)."
    )
    async def customers(self, info: Info, ids: list[strawberry.ID]) -> list[Customer | None]:
        if len(ids) > MAX_CUSTOMERS_PER_QUERY:
            raise bad_input(f"Ask for at most {MAX_CUSTOMERS_PER_QUERY} customers at once.", ["ids"])
        keys = [decode_int_id(i, "Customer", "ids") for i in ids]
        profiles = await info.context.loaders.customer_profiles.load_many(keys)
        return [Customer.of(k) if p is not None else None for k, p in zip(keys, profiles, strict=True)]

    @strawberry.field(description="Agents and the DPO: find a customer by email (matched by blind index).")
    async def customer_by_email(self, info: Info, email: str) -> Customer | None:
        key = await service.find_by_email(info.context.services.engine, info.context.services.vault, email)
        return Customer.of(key) if key is not None else None

    @strawberry.field(description="Agents and the DPO: customers with this phone number (matched by blind index).")
    async def customers_by_phone(self, info: Info, phone: str) -> list[Customer]:
        keys = await service.find_by_phone(info.context.services.engine, info.context.services.vault, phone)
        return [Customer.of(key) for key in keys]


def _registration(input: CustomerRegisterInput) -> service.Registration:
    return service.Registration(
        email=input.email,
        password=input.password,
        first_name=input.first_name,
        last_name=input.last_name,
        phone=input.phone,
    )


@strawberry.type
class CustomerMutation:
    @strawberry.mutation
    async def customer_register(self, info: Info, input: CustomerRegisterInput) -> CustomerPayload:
        await limit(info, "register")
        registration = _registration(input)
        problems = service.validate_registration(registration)
        if problems:
            return CustomerPayload(customer=None, user_errors=[user_error(p) for p in problems])
        services = info.context.services
        try:
            key = await service.register(services.engine, services.vault, services.clock, registration)
        except customer_errors.CustomerError as problem:
            return CustomerPayload(customer=None, user_errors=[user_error(problem)])
        info.context.created_subjects.add(str(key))
        profile = await _profile(info, key)  # every account gets its loyalty card at registration
        await loyalty.card_number(services.engine, services.vault, key, profile.subject, services.clock.now())
        return CustomerPayload(customer=Customer.of(key), user_errors=[])

    @strawberry.mutation
    async def customer_access_token_create(self, info: Info, email: str, password: str) -> AccessTokenPayload:
        await limit(info, "sign_in", email=email)
        services = info.context.services
        try:
            key = await service.authenticate(services.engine, services.vault, services.clock, email, password)
        except customer_errors.CustomerError as problem:
            return AccessTokenPayload(access_token=None, user_errors=[user_error(problem)])
        issued = await issue_customer_token(info, key)
        return AccessTokenPayload(
            access_token=AccessToken(token=issued.token, expires_at=issued.expires_at), user_errors=[]
        )

    @strawberry.mutation(
        description="Grant or withdraw consent for a purpose of the privacy policy. Agents pass "
        "`customerId` to record a decision the customer gave them."
    )
    async def consent_set(
        self,
        info: Info,
        purpose: str,
        granted: bool,
        customer_id: Annotated[strawberry.ID | None, strawberry.argument(description="Agents only.")] = None,
    ) -> ConsentPayload:
        principal = info.context.principal
        if customer_id is None:
            key = _signed_in_customer(principal)
            method = "self-service via api"
        else:
            if principal.role not in CONSENT_ON_BEHALF_ROLES:
                raise forbidden("Only agents record consent on a customer's behalf.")
            key = decode_int_id(customer_id, "Customer", "customerId")
            method = f"recorded by {principal.role.value} {principal.subject} on the customer's request"
        services = info.context.services
        user_errors: list[UserError] = []
        try:
            await service.set_consent(
                services.engine, services.vault, key, purpose, granted, channel=info.context.channel.code, method=method
            )
        except (VaultError, customer_errors.CustomerError) as problem:
            user_errors.append(user_error(problem))
        current = await service.consents_by_ids(services.engine, services.vault, [key])
        return ConsentPayload(consents=[Consent.of(c) for c in current.get(key, [])], user_errors=user_errors)

    @strawberry.mutation(
        description="Rectify a profile (GDPR Art. 16): the signed-in customer their own; an agent or the DPO "
        "passes `customerId` (audited). A new email must not belong to another account."
    )
    async def customer_update(
        self,
        info: Info,
        input: CustomerUpdateInput,
        customer_id: Annotated[strawberry.ID | None, strawberry.argument(description="Agents and the DPO.")] = None,
    ) -> CustomerPayload:
        # Who may name whom is the policy's (`self_or_unnamed` for customers); an operator names someone.
        key = (
            _signed_in_customer(info.context.principal)
            if customer_id is None
            else decode_int_id(customer_id, "Customer", "customerId")
        )
        change = service.ProfileUpdate(
            email=input.email, first_name=input.first_name, last_name=input.last_name, phone=input.phone
        )
        problems = service.validate_update(change)
        if problems:
            return CustomerPayload(customer=None, user_errors=[user_error(p) for p in problems])
        services = info.context.services
        try:
            await service.update_profile(services.engine, services.vault, key, change)
        except customer_errors.CustomerError as problem:
            return CustomerPayload(customer=None, user_errors=[user_error(problem)])
        return CustomerPayload(customer=Customer.of(key), user_errors=[])

    @strawberry.mutation(description="Add an address to the signed-in customer's address book.")
    async def customer_address_add(self, info: Info, input: AddressInput) -> CustomerPayload:
        key = _signed_in_customer(info.context.principal)
        services = info.context.services
        address = service.Address(
            name=input.name,
            line1=input.line1,
            line2=input.line2,
            postal_code=input.postal_code,
            city=input.city,
            country=input.country,
        )
        try:
            await service.add_address(services.engine, services.vault, key, address)
        except customer_errors.CustomerError as problem:
            return CustomerPayload(customer=None, user_errors=[user_error(problem)])
        return CustomerPayload(customer=Customer.of(key), user_errors=[])
