"""Password hashes: the production parameters, and the dummy check that keeps unknown accounts indistinguishable.

The suite hashes at Argon2id's cheapest parameters (tests/conftest.py), so the production ones are
read in a process of their own, where no fixture reaches.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from argon2 import extract_parameters

from commerce.customers.passwords import hash_password, verify_password

ROOT = Path(__file__).resolve().parents[2]
HASH_ONE = (
    "import asyncio; from commerce.customers.passwords import hash_password; print(asyncio.run(hash_password('x')))"
)


def test_outside_the_tests_passwords_are_hashed_with_argon2id_at_no_less_than_owasp_s_minimum():
    stored = subprocess.run(
        [sys.executable, "-c", HASH_ONE], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    parameters = extract_parameters(stored)
    assert stored.startswith("$argon2id$")
    assert parameters.memory_cost >= 19 * 1024  # KiB: OWASP's Password Storage Cheat Sheet, with 2 passes
    assert parameters.time_cost >= 2


async def test_a_check_with_no_stored_hash_is_false_even_for_the_dummy_hash_s_own_password():
    assert await verify_password(None, "omnigate-no-such-account") is False
    assert await verify_password("", "omnigate-no-such-account") is False
    stored = await hash_password("right")
    assert await verify_password(stored, "right") is True
    assert await verify_password(stored, "wrong") is False
