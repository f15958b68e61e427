"""Pairing codes and request signatures shared by the agent and the bot."""

from __future__ import annotations

import math

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardagent.protocol import (
    ALPHABET,
    CODE_LENGTH,
    canonical,
    code_digest,
    format_code,
    new_code,
    normalize_code,
    public_key_text,
    sign,
    verify,
)


def test_codes_have_at_least_34_bits_from_an_alphabet_without_look_alikes():
    assert CODE_LENGTH * math.log2(len(ALPHABET)) >= 34
    assert not set("01ILOUV") & set(ALPHABET) and len(set(ALPHABET)) == len(ALPHABET)
    codes = {new_code() for _ in range(2000)}
    assert len(codes) == 2000 and all(len(c) == CODE_LENGTH and set(c) <= set(ALPHABET) for c in codes)


def test_a_code_is_accepted_as_users_type_it_and_refused_with_the_reason():
    code = new_code()
    shown = format_code(code)
    assert (
        shown[4] == "-" and normalize_code(shown.lower()) == code and normalize_code(f" {code[:4]} {code[4:]} ") == code
    )
    with pytest.raises(ValueError, match="characters no code uses \\(0O\\)"):
        normalize_code("AB0O-CDEF")
    with pytest.raises(ValueError, match="has 7 characters; it has 8"):
        normalize_code("ABCD-EFG")
    assert code_digest(code) != code_digest(new_code()) and code not in code_digest(code)


def test_a_signature_covers_method_path_agent_time_sequence_and_body():
    key = Ed25519PrivateKey.generate()
    public = public_key_text(key)
    message = canonical("POST", "/agent/events", "ag1", 1_700_000_000, 7, b'{"events": []}')
    signature = sign(key, message)
    assert verify(public, message, signature)
    for other in (
        canonical("POST", "/agent/events", "ag1", 1_700_000_000, 8, b'{"events": []}'),
        canonical("POST", "/agent/events", "ag1", 1_700_000_001, 7, b'{"events": []}'),
        canonical("POST", "/agent/events", "ag2", 1_700_000_000, 7, b'{"events": []}'),
        canonical("POST", "/agent/unpair", "ag1", 1_700_000_000, 7, b'{"events": []}'),
        canonical("POST", "/agent/events", "ag1", 1_700_000_000, 7, b'{"events": [1]}'),
    ):
        assert not verify(public, other, signature)
    forger = Ed25519PrivateKey.generate()
    assert not verify(public, message, sign(forger, message))
    assert not verify(public, message, "not base64!") and not verify("garbage", message, signature)
