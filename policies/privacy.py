"""The privacy policy as data: the notice's version and the purposes consent can be given for.

Loaded from `privacy.toml` beside this module and validated once, so a typo in the file
fails at start-up, not when a customer clicks "agree".
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["PrivacyPolicy", "PrivacyPolicyError", "Purpose", "load_privacy_policy", "privacy_policy"]

DEFAULT_PATH = Path(__file__).with_name("privacy.toml")
_PURPOSE_NAME = re.compile(r"^[A-Z][A-Z0-9_]{1,63}$")


class PrivacyPolicyError(ValueError):
    """The policy file is missing something or names a purpose badly."""


@dataclass(frozen=True, slots=True)
class Purpose:
    code: str
    description: str


@dataclass(frozen=True, slots=True)
class PrivacyPolicy:
    version: str
    purposes: tuple[Purpose, ...]
    processing: Mapping[str, str] = field(default_factory=dict)  # activity -> the purpose it needs consent for

    @property
    def purpose_codes(self) -> frozenset[str]:
        return frozenset(p.code for p in self.purposes)

    def knows(self, purpose: str) -> bool:
        return purpose in self.purpose_codes

    def consent_for(self, activity: str) -> str:
        """The purpose whose consent `activity` needs; an activity the file does not name is refused."""
        try:
            return self.processing[activity]
        except KeyError:
            raise PrivacyPolicyError(f"no [processing.{activity}] in the privacy policy") from None


def _parse(data: dict[str, Any], source: str) -> PrivacyPolicy:
    notice = data.get("notice")
    if not isinstance(notice, dict) or not isinstance(notice.get("version"), str) or not notice["version"].strip():
        raise PrivacyPolicyError(f"{source}: [notice] needs a non-empty `version` string")
    purposes = data.get("purposes")
    if not isinstance(purposes, dict) or not purposes:
        raise PrivacyPolicyError(f"{source}: define at least one [purposes.NAME] table")
    parsed = []
    for code, body in purposes.items():
        if not _PURPOSE_NAME.match(code):
            raise PrivacyPolicyError(f"{source}: purpose {code!r} must be UPPER_SNAKE_CASE")
        if not isinstance(body, dict) or not isinstance(body.get("description"), str):
            raise PrivacyPolicyError(f"{source}: purpose {code} needs a `description` string")
        unknown = set(body) - {"description"}
        if unknown:
            raise PrivacyPolicyError(f"{source}: purpose {code} has unknown keys {sorted(unknown)}")
        parsed.append(Purpose(code=code, description=body["description"]))
    known = {p.code for p in parsed}
    processing: dict[str, str] = {}
    for activity, body in data.get("processing", {}).items():
        if not isinstance(body, dict) or set(body) != {"consent"} or body["consent"] not in known:
            raise PrivacyPolicyError(f"{source}: [processing.{activity}] needs consent = one of {sorted(known)}")
        processing[activity] = body["consent"]
    unknown = set(data) - {"notice", "purposes", "processing"}
    if unknown:
        raise PrivacyPolicyError(f"{source}: unknown section(s) {sorted(unknown)}")
    return PrivacyPolicy(version=notice["version"].strip(), purposes=tuple(parsed), processing=processing)


def load_privacy_policy(path: Path | str = DEFAULT_PATH) -> PrivacyPolicy:
    path = Path(path)
    with path.open("rb") as f:
        try:
            data = tomllib.load(f)
        except tomllib.TOMLDecodeError as exc:
            raise PrivacyPolicyError(f"{path.name}: {exc}") from None
    return _parse(data, path.name)


@cache
def privacy_policy() -> PrivacyPolicy:
    """The shipped policy, loaded once."""
    return load_privacy_policy()
