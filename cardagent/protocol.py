"""What the card agent and the bot agree on: pairing codes and signed requests.

Pairing works like the OAuth device flow (RFC 8628) turned around: the chat shows a
one-time code, the user types it into ``portpal-agent pair``, and the agent exchanges it
for its registration. The agent makes an Ed25519 key pair on the PC and sends only the
public key, so the bot holds nothing that would let anyone speak for the agent.

Codes are 8 characters from an alphabet without look-alikes (no 0/O, 1/I/L, U/V), so
29^8 codes, about 39 bits; shown as ``ABCD-EFGH``; typed in any case, with or without the dash.

Each report is signed over ``canonical(...)``: method, path, agent id, timestamp,
sequence number and a digest of the body, so a captured request cannot be replayed
with another body, another sequence number or later than the server's window.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

__all__ = [
    "ALPHABET",
    "CODE_LENGTH",
    "HEADER_AGENT",
    "HEADER_SEQ",
    "HEADER_SIGNATURE",
    "HEADER_TIME",
    "PATH_EVENTS",
    "PATH_PAIR",
    "PATH_UNPAIR",
    "canonical",
    "code_digest",
    "format_code",
    "new_code",
    "normalize_code",
    "public_key_text",
    "sign",
    "verify",
]

ALPHABET = "23456789ABCDEFGHJKMNPQRSTWXYZ"
CODE_LENGTH = 8
HEADER_AGENT = "X-PortPal-Agent"
HEADER_TIME = "X-PortPal-Time"
HEADER_SEQ = "X-PortPal-Seq"
HEADER_SIGNATURE = "X-PortPal-Signature"
# The bot's card-agent endpoints, below its base URL. Signatures cover these paths, not the
# URL's, so a reverse proxy may mount the bot under a prefix.
PATH_PAIR = "/agent/pair"
PATH_EVENTS = "/agent/events"
PATH_UNPAIR = "/agent/unpair"


def new_code() -> str:
    """A fresh pairing code, from the OS's random source."""
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def format_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def normalize_code(text: str) -> str:
    """The code as typed (any case, spaces or dashes); ValueError says what is wrong."""
    code = "".join(ch for ch in text.upper() if ch not in " -")
    bad = sorted({ch for ch in code if ch not in ALPHABET})
    if bad:
        raise ValueError(f"the code has characters no code uses ({''.join(bad)}); it looks like ABCD-EFGH")
    if len(code) != CODE_LENGTH:
        raise ValueError(f"the code has {len(code)} characters; it has {CODE_LENGTH}, like ABCD-EFGH")
    return code


def code_digest(code: str) -> str:
    """How a code is stored: never the code itself."""
    return hashlib.sha256(f"portpal-pair:{code}".encode()).hexdigest()


def canonical(method: str, path: str, agent: str, timestamp: int, seq: int, body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return f"{method.upper()}\n{path}\n{agent}\n{timestamp}\n{seq}\n{digest}".encode()


def public_key_text(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def sign(key: Ed25519PrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message)).decode()


def verify(public_key: str, message: bytes, signature: str) -> bool:
    """Whether ``signature`` is the agent's over ``message``; False for anything malformed."""
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key, validate=True))
        key.verify(base64.b64decode(signature, validate=True), message)
    except (InvalidSignature, ValueError):
        return False
    return True
