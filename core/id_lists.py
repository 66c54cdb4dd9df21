"""`column IN (a list of ids bound as one parameter)`: one SQL text whatever the list's length.

SQLAlchemy's expanding IN renders one placeholder per id on every execution (a regex pass and
a name per id: a fifth of a storefront request's CPU on SQLite), and every new list length is
a new statement text, which asyncpg prepares again (a round trip). Bound as one value instead:
on PostgreSQL `column = ANY($1)` with an integer array, on SQLite `column IN (SELECT value FROM
json_each(?))` with the ids as JSON; other dialects keep the expanding IN. Both use the
column's index as the IN list did.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Boolean, Integer, String, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import coercions, roles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter, ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal, _TraverseInternalsType
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = ["IdList", "in_ids"]


class IdList(TypeDecorator[Sequence[int]]):
    """Integer ids as one bound value: an int[] on PostgreSQL, a JSON array's text elsewhere."""

    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(ARRAY(Integer))
        return dialect.type_descriptor(String())

    def process_bind_param(self, value: Sequence[int] | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "postgresql":
            return value if isinstance(value, list) else list(value)
        return orjson.dumps(value if isinstance(value, list | tuple) else list(value)).decode()


class InIds(ColumnElement[bool]):
    """`column` is one of the ids bound to the parameter `name` (see the module's docstring)."""

    __visit_name__ = "omnigate_in_ids"
    inherit_cache = True
    _traverse_internals: _TraverseInternalsType = [  # noqa: RUF012  # SQLAlchemy declares it so
        ("column", InternalTraversal.dp_clauseelement),
        ("ids", InternalTraversal.dp_clauseelement),
    ]
    type = Boolean()
    _is_implicitly_boolean = True  # a condition as it is (no `= 1` on SQLite)

    def __init__(self, column: Any, name: str) -> None:
        self.column: ColumnElement[Any] = coercions.expect(roles.ExpressionElementRole, column)
        self.ids: BindParameter[Any] = bindparam(name, type_=IdList())
        self.expanding: ColumnElement[bool] = self.column.in_(bindparam(name, expanding=True))


def in_ids(column: Any, name: str = "ids") -> ColumnElement[bool]:
    """`column IN :name` with `name` bound to a list of ids at execution (`{name: [1, 2]}`)."""
    return InIds(column, name)


@compiles(InIds)
def _expanding(element: InIds, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.expanding, **kw)


@compiles(InIds, "postgresql")
def _any_array(element: InIds, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{compiler.process(element.column, **kw)} = ANY({compiler.process(element.ids, **kw)})"


@compiles(InIds, "sqlite")
def _json_each(element: InIds, compiler: SQLCompiler, **kw: Any) -> str:
    column, ids = compiler.process(element.column, **kw), compiler.process(element.ids, **kw)
    return f"{column} IN (SELECT value FROM json_each({ids}))"  # noqa: S608  # compiled SQL, not input
