"""One typed settings object, read once from `OMNIGATE_*` environment variables.

It lives in `core` so every layer can name its type; only `gateway` calls `from_env`, once,
and passes the object down. No other module reads the environment.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, get_type_hints

__all__ = ["PREFIX", "Settings", "SettingsError", "unknown_variables"]

PREFIX = "OMNIGATE_"
# `OMNIGATE_*` variables that are not settings of the gateway (the test suite's and CI's own).
OTHER_VARIABLES = frozenset({"OMNIGATE_TEST_DATABASE_URL", "OMNIGATE_PG_URL"})


class SettingsError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Settings:
    """Every knob, with a development default. The variable is `OMNIGATE_` + the upper-cased name."""

    # storage
    database_url: str = "sqlite+aiosqlite:///./var/omnigate.db"
    database_pool_size: int = 10
    database_echo: bool = False
    # how long start-up and /ready wait for the database to answer before calling it unreachable
    database_timeout_seconds: float = 2.0
    # while the database is unreachable: the Retry-After of the 503 answers, and how often the
    # outage is logged (once per interval, with the count of refused requests)
    database_retry_after_seconds: int = 5
    # HTTP
    host: str = "127.0.0.1"
    port: int = 8000
    # GraphQL requests a worker runs at once, the rest queued (gateway/admission.py); 0: no limit;
    # -1: automatic (2 on SQLite, no limit on PostgreSQL)
    max_concurrent_requests: int = -1
    # GraphQL safety
    graphiql: bool = True
    console: bool = True  # the operators' pages at /console (they only run GraphQL with the operator's token)
    introspection: bool = True
    max_query_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 2_000
    max_query_chars: int = 50_000  # a longer document is refused unparsed (comments cost no tokens, only memory)
    max_query_cost: int = 50_000
    max_page_size: int = 100
    max_string_chars: int = 10_000  # any string argument, in the document or the variables
    document_cache_size: int = 512
    max_body_bytes: int = 1_000_000  # a POST body larger than this is refused (413) unread
    compiled_queries: bool = True
    # persisted operations (gateway/persisted.py)
    trusted_documents_dir: str = ""  # .graphql files loaded at start-up, known by their SHA-256
    trusted_documents_only: bool = False  # refuse every other document (production hardening)
    persisted_query_cache_size: int = 10_000  # APQ registrations kept (LRU)
    # HTTP caching of public reads (gateway/caching.py)
    cache_policy_file: str = ""  # cache hints per type/field; empty: the packaged policies/cache.toml
    response_cache: bool = False  # keep anonymous responses for their max-age (in-process, or Redis)
    # WebSocket bounds, per gateway process: anyone holding a guest cart's id may follow it
    ws_max_connections_per_client: int = 20  # open WebSockets per client address
    ws_max_operations_per_connection: int = 20  # operations (subscriptions) running on one WebSocket
    ws_max_subscriptions_per_cart: int = 10  # `cartUpdated` subscribers of one cart
    # vault (development defaults; production must set its own)
    kek_file: str = "./var/kek.json"
    kek: str = field(default="", repr=False)  # key material: never in a repr
    blind_index_key: str = field(default="", repr=False)
    kek_active_version: int = 0  # the KEK version new data keys are wrapped by; 0: the highest configured
    vault_encryption: bool = True  # test-only switch, for the vault benchmark's baseline
    # audit log: the chain's HMAC key (held like the KEK, never in the database) and its checkpoints
    audit_key: str = field(default="", repr=False)
    audit_checkpoint_file: str = "./var/audit-checkpoints.jsonl"  # signed heads, appended JSON lines
    audit_checkpoint_interval_seconds: int = 60  # 0: no checkpoints
    # auth
    jwt_secret: str = field(default="dev-only-secret-change-me-in-production-0123456789", repr=False)
    jwt_issuer: str = "omnigate"
    jwt_audience: str = "omnigate"
    jwt_jwks_url: str = ""  # an identity provider's JWKS: its RS256/ES256 tokens are accepted too
    jwt_jwks_issuer: str = ""  # the IdP's `iss` (required with jwt_jwks_url)
    jwt_jwks_audience: str = ""  # the IdP's `aud` for us (default: jwt_audience)
    jwt_jwks_algorithms: str = "RS256,ES256"
    jwt_role_claim: str = "roles"  # the IdP claim holding its role name(s): a string or a list
    jwt_location_claim: str = "store"  # the IdP claim holding a staff member's store code
    # IdP role name -> our role, comma-separated; the first IdP role that maps wins
    jwt_role_map: str = (
        "omnigate-admin=admin,omnigate-dpo=dpo,omnigate-agent=agent,omnigate-staff=staff,customer=customer"
    )
    customer_token_ttl_seconds: int = 3600
    # password reset: the link emailed ({token} is replaced), and how long it works
    password_reset_url: str = "http://127.0.0.1:8000/account/reset?token={token}"  # noqa: S105 (a URL)
    password_reset_ttl_seconds: int = 3600
    # rate limits (policies/limits.toml unless this names another file); shared through Redis when set
    limits_file: str = ""
    redis_url: str = ""  # e.g. redis://127.0.0.1:6379/0: rate limits and the response cache; empty: per process
    redis_prefix: str = "omnigate:"  # the prefix of every key this deployment keeps in Redis (several, one Redis)
    # email: the outbox is sent over SMTP by `python -m gateway mail send`, or by `serve` every
    # mail_send_interval_seconds when smtp_host is set (0: only by the command)
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_tls: bool = False  # implicit TLS (port 465)
    smtp_starttls: bool = False  # require STARTTLS (otherwise used when the server offers it)
    smtp_timeout_seconds: int = 30
    smtp_from: str = "Omnigate <no-reply@omnigate.example>"
    mail_send_interval_seconds: int = 10
    # policies
    policy_file: str = ""  # the access policy; empty: the packaged policies/access.toml
    retention_file: str = ""  # the retention policy; empty: the packaged policies/retention.toml
    # data-subject requests: every erasure is appended here before it starts, outside the database,
    # so that `restore` can replay it on an older backup (keep it on durable storage shared by replicas)
    erasure_ledger_file: str = "./var/erasure-ledger.jsonl"
    erased_check_ttl_seconds: int = 5  # a replica re-reads "is this customer erased?" at least this often
    # a replica re-reads "is this customer token still signed in?" at least this often (a sign-out or a
    # new password is heard at once through the broadcast; this bounds a replica that missed it)
    session_check_ttl_seconds: int = 5
    # cart
    cart_max_line_quantity: int = 99
    cart_max_lines: int = 100
    cart_max_discount_codes: int = 10  # distinct codes one cart holds
    # What cartAttachToCustomer does when the customer already has a cart:
    #   merge         - guest lines join it (same variant: quantities add up, capped by stock and
    #                   cart_max_line_quantity); discount codes are united and re-validated
    #   keep_guest    - the guest cart's lines and codes replace the customer's (an empty guest
    #                   cart replaces nothing: the customer's stays as it is)
    #   keep_customer - the customer's cart stays as it is; the guest lines are dropped
    # In every case the guest cart is closed and its id points to the customer's cart.
    cart_merge_strategy: str = "merge"
    guest_cart_ttl_seconds: int = 30 * 24 * 3600  # idle guest carts expire (python -m gateway expire-carts)
    # orders
    reservation_ttl_seconds: int = 48 * 3600  # reserve & collect holds stock this long (expire-reservations)
    payment_timeout_seconds: int = 15  # the payment provider's time to answer an authorization
    checkout_pending_timeout_seconds: int = 900  # a checkout stuck waiting for payment longer is failed
    pickup_hold_days: int = 7  # a paid click & collect order waits this long: the date its ready email names
    # events (python -m gateway events relay)
    webhooks_file: str = ""  # the webhook endpoints (TOML or JSON); empty: none configured
    webhook_max_attempts: int = 8  # after this many failed attempts a delivery is dead-lettered
    webhook_backoff_seconds: int = 5  # wait before the first retry; it doubles with every further failure
    webhook_backoff_max_seconds: int = 3600  # the longest wait between two attempts
    webhook_timeout_seconds: int = 10  # per HTTP attempt (also how long a claimed delivery stays leased)
    relay_batch_size: int = 100  # deliveries claimed per endpoint per round
    relay_poll_ms: int = 1000  # how often an idle relay looks for new events
    # runtime
    environment: str = "development"
    log_level: str = "INFO"
    # tracing (the exporter itself is chosen by the standard OTEL_* variables)
    trace_resolvers: bool = False  # a span per custom resolver, not only per root field: costly
    # the operation span is named `query Storefront` instead of `query`: for deployments whose
    # operation names are known (persisted queries), else span names are unbounded
    trace_operation_name: bool = False
    # metrics (exported through the OTEL_* variables; and on /metrics for Prometheus with this)
    metrics_prometheus: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if env is None else env
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = _parse(f.name, raw, hints[f.name])
        values.update(overrides)
        return cls(**values)

    @classmethod
    def variable(cls, name: str) -> str:
        """The environment variable of a setting: `port` -> `OMNIGATE_PORT`."""
        return PREFIX + name.upper()

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @property
    def is_production(self) -> bool:
        return self.environment == "production"


def _parse(name: str, raw: str, hint: Any) -> Any:
    if hint is bool:
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off", ""}:
            return False
        raise SettingsError(f"{PREFIX}{name.upper()} must be true or false, not {raw!r}")
    if hint is int:
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{PREFIX}{name.upper()} must be a whole number, not {raw!r}") from None
    if hint is float:
        try:
            return float(raw)
        except ValueError:
            raise SettingsError(f"{PREFIX}{name.upper()} must be a number, not {raw!r}") from None
    return raw


def unknown_variables(env: Mapping[str, str] | None = None) -> list[tuple[str, str | None]]:
    """`OMNIGATE_*` variables that name no setting, each with the nearest known name (a typo's fix)."""
    env = os.environ if env is None else env
    known = {Settings.variable(f.name) for f in fields(Settings)} | OTHER_VARIABLES
    suffixes = {name.removeprefix(PREFIX): name for name in known}  # the shared prefix would make all alike
    found = []
    for name in sorted(n for n in env if n.startswith(PREFIX) and n not in known):
        nearest = difflib.get_close_matches(name.removeprefix(PREFIX), list(suffixes), n=1, cutoff=0.6)
        found.append((name, suffixes[nearest[0]] if nearest else None))
    return found
