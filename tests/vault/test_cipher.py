"""The ciphertext format and blind indexes, over many inputs."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from vault.blind import blind_index, normalise_email
from vault.cipher import DecryptionFailed, field_context, key_version_of, open_sealed, seal

KEY = AESGCM(b"k" * 32)
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)


@given(value=st.text(max_size=200), version=st.integers(1, 2**32 - 1), table=names, column=names, subject=names)
def test_a_sealed_value_opens_only_in_its_own_place(value, version, table, column, subject):
    context = field_context(table, column, subject)
    blob = seal(KEY, version, context, value)
    assert key_version_of(blob) == version
    assert open_sealed(KEY, context, blob) == value
    assert len(value.encode()) < 8 or value.encode() not in blob  # (short values may recur by chance)
    for elsewhere in (
        field_context(table, column, subject + "x"),
        field_context(table, column + "x", subject),
        field_context(table + "x", column, subject),
    ):
        with pytest.raises(DecryptionFailed):
            open_sealed(KEY, elsewhere, blob)


@given(local=st.from_regex(r"[a-z0-9.]{1,20}", fullmatch=True), pad=st.sampled_from(["", " ", "  \t"]))
def test_an_email_finds_the_same_index_whatever_its_case_or_padding(local, pad):
    email = f"{local}@example.com"
    assert blind_index(b"b" * 32, "email", pad + email.upper() + pad) == blind_index(b"b" * 32, "email", email)
    assert blind_index(b"c" * 32, "email", email) != blind_index(b"b" * 32, "email", email)


def test_phones_are_compared_as_digits_with_the_international_prefix():
    same = [
        "+48 600 100 200",
        "+48-600-100-200",
        "0048600100200",
        "+48 (600) 100200",
        "＋４８ ６００ １００ ２００",  # noqa: RUF001 - fullwidth digits on purpose
        "+٤٨ ٦٠٠ ١٠٠ ٢٠٠",  # noqa: RUF001 - Arabic-Indic digits on purpose
    ]  # fullwidth (an IME), Arabic-Indic digits
    assert len({blind_index(b"b" * 32, "phone", p) for p in same}) == 1
    assert blind_index(b"b" * 32, "phone", "600 100 200") != blind_index(b"b" * 32, "phone", same[0])


@given(email=st.text(max_size=40))
def test_normalising_an_email_twice_changes_nothing(email):
    # Registration stores the normalised form and sign-in normalises what is typed: both must agree.
    assert normalise_email(normalise_email(email)) == normalise_email(email)
