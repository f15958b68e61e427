"""The real PC/SC stack for tests: pcscd with vpcd's virtual readers, and a virtual card.

``Pcscd`` runs Debian's ``pcscd -f`` with a reader.conf.d of its own: one vpcd entry, which
pcscd shows as two readers ("PortPal Virtual Reader 00 00" and "... 00 01"), each waiting
for a virtual card on a TCP port of 127.0.0.1. ``VirtualCard`` is such a card: a small
client of vpcd's protocol (2-byte big-endian length, then the data; one-byte control
messages for power off/on, reset and "send your ATR", any longer message is an APDU).
Connecting inserts the card, closing removes it. pcscd listens on its fixed socket
(/run/pcscd/pcscd.comm), so one runs per machine, and the tests need root.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path

__all__ = ["ATR", "READER", "Pcscd", "VirtualCard", "pcsc_missing"]

DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
SOCKET = Path("/run/pcscd/pcscd.comm")
FRIENDLY = "PortPal Virtual Reader"
READER = f"{FRIENDLY} 00 00"  # the first of vpcd's two slots
# A contact card's answer to reset (T=1, historical bytes "PORTPAL").
ATR = bytes.fromhex("3B8880018050504F52545041504C")
_POWER_OFF, _POWER_ON, _RESET, _GET_ATR = 0, 1, 2, 4


def pcsc_missing() -> str | None:
    """Why the PC/SC stack cannot run here, or None."""
    if shutil.which("pcscd") is None or not DRIVER.exists():
        return "pcscd and vsmartcard-vpcd are not installed (scripts/install-system-deps installs them)"
    if os.geteuid() != 0:
        return "pcscd listens on /run/pcscd: the PC/SC tests need root"
    return None


def _free_port_pair() -> int:
    """A port P with P and P + 1 free on 127.0.0.1 (vpcd's two slots)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port >= 65535:
            continue
        with socket.socket() as a, socket.socket() as b:
            try:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two consecutive free ports")


class Pcscd:
    """``pcscd -f`` with the virtual readers; ``stop``/``start`` to take the service away."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="portpal-pcscd-"))
        self.port = _free_port_pair()
        conf = self.dir / "reader.conf.d"
        conf.mkdir()
        (conf / "portpal-vpcd").write_text(
            f'FRIENDLYNAME "{FRIENDLY}"\nDEVICENAME /dev/null:{self.port}\nLIBPATH {DRIVER}\nCHANNELID {self.port}\n'
        )
        self.log = self.dir / "pcscd.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10) -> None:
        if self.process is not None:
            return
        with contextlib.suppress(FileNotFoundError):
            SOCKET.unlink()  # left by a pcscd that was killed
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                ["pcscd", "--foreground", "--info", "--config", str(self.dir / "reader.conf.d")],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while "daemon ready" not in self.log.read_bytes()[offset:].decode(errors="replace"):
            if self.process.poll() is not None:
                raise RuntimeError(f"pcscd exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"pcscd not ready within {timeout} s")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def card(self, slot: int = 0, atr: bytes = ATR) -> VirtualCard:
        return VirtualCard(self.port + slot, atr)


class VirtualCard:
    """A card for a vpcd slot: ``insert`` connects to the reader, ``remove`` disconnects.
    It answers every APDU with 90 00 (the agent only reads presence and the ATR)."""

    def __init__(self, port: int, atr: bytes = ATR) -> None:
        self.port = port
        self.atr = atr
        self.apdus: list[bytes] = []
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    @property
    def inserted(self) -> bool:
        return self._sock is not None

    def insert(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=1)
                break
            except OSError:  # pcscd's driver is not listening yet (just started)
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        sock.settimeout(None)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
        self._thread.start()

    def remove(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _serve(self, sock: socket.socket) -> None:
        try:
            while True:
                header = self._read(sock, 2)
                if header is None:
                    return
                (size,) = struct.unpack(">H", header)
                message = self._read(sock, size)
                if message is None:
                    return
                if size == 1:
                    if message[0] == _GET_ATR:
                        sock.sendall(struct.pack(">H", len(self.atr)) + self.atr)
                    continue  # power on/off and reset need no answer
                self.apdus.append(message)
                sock.sendall(struct.pack(">H", 2) + b"\x90\x00")
        except OSError:
            return

    @staticmethod
    def _read(sock: socket.socket, size: int) -> bytes | None:
        data = b""
        while len(data) < size:
            chunk = sock.recv(size - len(data))
            if not chunk:
                return None
            data += chunk
        return data
