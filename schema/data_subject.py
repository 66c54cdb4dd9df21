"""Data-subject requests in the API (DPO only): export, erase, list, extend.

Who may call them is in policies/access.toml (the DPO); every field of a request is personal
(`[types.DataSubjectRequest]`), so each read is audited under the customer it is about. The
export document is generated when read, never stored.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from commerce.customers import service as customers
from core.ids import to_global_id
from schema.errors import UserError, bad_input, user_error
from schema.node import Node, decode_int_id, register_node
from schema.scalars import JSON
from vault.requests import service as requests_service
from vault.requests.errors import RequestError
from vault.requests.service import DataSubjectRequests, Request

__all__ = ["DataSubjectMutation", "DataSubjectQuery", "DataSubjectRequest"]


@strawberry.enum
class DataSubjectRequestKind(Enum):
    EXPORT = "EXPORT"
    ERASURE = "ERASURE"


@strawberry.enum
class DataSubjectRequestStatus(Enum):
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    REJECTED = "REJECTED"


@strawberry.type(
    description="What an erasure kept, and why (GDPR Art. 17(3)(b)): e.g. orders for the accounting period."
)
class RetainedData:
    category: str
    reason: str
    legal_basis: str
    until: datetime


def _service(info: Info) -> DataSubjectRequests:
    service: DataSubjectRequests | None = info.context.services.requests
    if service is None:
        raise RuntimeError("data-subject requests are not configured")
    return service


@strawberry.type(description="A data-subject request (GDPR Art. 15, 17, 20), due within a month of receipt.")
class DataSubjectRequest(Node):
    id: strawberry.ID
    kind: DataSubjectRequestKind
    status: DataSubjectRequestStatus
    customer_id: strawberry.ID
    received_at: datetime
    due_at: datetime
    completed_at: datetime | None
    extension_reason: str | None = strawberry.field(description="Set when dueAt was extended (Art. 12(3)).")
    customer_key: strawberry.Private[int]
    request: strawberry.Private[Request]

    @classmethod
    def of(cls, request: Request) -> DataSubjectRequest:
        return cls(
            id=strawberry.ID(to_global_id("DataSubjectRequest", request.id)),
            kind=DataSubjectRequestKind(request.kind),
            status=DataSubjectRequestStatus(request.status),
            customer_id=strawberry.ID(to_global_id("Customer", request.customer_key)),
            received_at=request.received_at,
            due_at=request.due_at,
            completed_at=request.completed_at,
            extension_reason=request.extension_reason,
            customer_key=request.customer_key,
            request=request,
        )

    @strawberry.field(
        description="EXPORT only: everything held about the person, machine-readable (a versioned document; "
        "its JSON Schema is vault/requests/export.schema.json). Generated when read, for 30 days after completion."
    )
    async def export(self, info: Info) -> JSON | None:
        document = await _service(info).export_document(self.request)
        return JSON(document) if document is not None else None

    @strawberry.field(description="ERASURE only: what was kept, why, on which legal basis and until when.")
    def retained(self) -> list[RetainedData]:
        return [
            RetainedData(category=r.category, reason=r.reason, legal_basis=r.legal_basis, until=r.until)
            for r in self.request.retained
        ]


@register_node("DataSubjectRequest")
async def _request_node(info: Info, key: str) -> DataSubjectRequest | None:
    number = int(key) if key.isascii() and key.isdigit() and len(key) < 10 else None
    found = await _service(info).get(number) if number is not None else None
    return DataSubjectRequest.of(found) if found is not None else None


@strawberry.type
class DataSubjectRequestPayload:
    request: DataSubjectRequest | None
    user_errors: list[UserError]


@strawberry.type
class DataSubjectQuery:
    @strawberry.field(
        description="The DPO: requests, newest first; `after` is the last request's id of the previous page."
    )
    async def data_subject_requests(
        self, info: Info, first: int = 20, after: str | None = None, overdue: bool = False
    ) -> list[DataSubjectRequest]:
        limit = info.context.settings.max_page_size
        if not 0 <= first <= limit:
            raise bad_input(f"`first` must be between 0 and {limit}.", ["first"])
        after_key = decode_int_id(after, "DataSubjectRequest", "after") if after is not None else None
        found = await _service(info).recent(first, after_key, overdue=overdue)
        return [DataSubjectRequest.of(r) for r in found]


async def _open_and_run(info: Info, kind: str, customer_id: strawberry.ID) -> DataSubjectRequestPayload:
    key = decode_int_id(customer_id, "Customer", "customerId")
    services = info.context.services
    subject = (await customers.subjects_by_ids(services.engine, [key])).get(key)
    principal = info.context.principal
    service = _service(info)
    request = await service.open(
        kind, customer_key=key, subject_id=subject, requested_by=principal.subject or principal.role.value
    )
    problems: list[UserError] = []
    if request.status == requests_service.REJECTED:
        problems.append(UserError(code="NOT_FOUND", field=["customerId"], message="No such customer."))
    else:
        request = await service.run(request.id)
    return DataSubjectRequestPayload(request=DataSubjectRequest.of(request), user_errors=problems)


@strawberry.type
class DataSubjectMutation:
    @strawberry.mutation(description="The DPO: export everything held about a customer (Art. 15, 20).")
    async def data_subject_export(self, info: Info, customer_id: strawberry.ID) -> DataSubjectRequestPayload:
        return await _open_and_run(info, requests_service.EXPORT, customer_id)

    @strawberry.mutation(
        description="The DPO: erase a customer (Art. 17). What the law requires to keep is listed in `retained`."
    )
    async def data_subject_erase(self, info: Info, customer_id: strawberry.ID) -> DataSubjectRequestPayload:
        return await _open_and_run(info, requests_service.ERASURE, customer_id)

    @strawberry.mutation(
        description="The DPO: extend a request's deadline once, by two months, for a reason, before it passes."
    )
    async def data_subject_request_extend(
        self, info: Info, request_id: strawberry.ID, reason: str
    ) -> DataSubjectRequestPayload:
        key = decode_int_id(request_id, "DataSubjectRequest", "requestId")
        try:
            request: Any = await _service(info).extend(key, reason)
        except RequestError as problem:
            return DataSubjectRequestPayload(request=None, user_errors=[user_error(problem)])
        return DataSubjectRequestPayload(request=DataSubjectRequest.of(request), user_errors=[])
