"""HTTP the way a hostile client speaks it: raw sockets, for what httpx refuses to send.

httpx will not send a malformed Content-Length, and a chunked upload that the server cuts
off ends in a read error instead of the answer. These helpers write bytes to the socket and
report how far they got and what came back.
"""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["resident_kb", "send_chunked"]


def resident_kb() -> int:
    """This process's resident memory, in KiB."""
    return int(Path("/proc/self/statm").read_text(encoding="ascii").split()[1]) * 4  # pages of 4 KiB


def send_chunked(
    url: str, path: str, total: int, *, headers: dict[str, str] | None = None, chunk: int = 64 * 1024
) -> tuple[int, bytes]:
    """POST ``total`` bytes chunked, without Content-Length, until the server stops reading or
    closes. Returns (bytes sent, the start of the response)."""
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    sent = 0
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\n{extra}Transfer-Encoding: chunked\r\n\r\n".encode())
        piece = f"{chunk:x}\r\n".encode() + b"x" * chunk + b"\r\n"
        try:
            while sent < total:
                sock.sendall(piece)
                sent += chunk
        except OSError:  # reset, broken pipe or a server no longer reading (timeout)
            pass
        try:
            return sent, sock.recv(200)
        except OSError:
            return sent, b""
