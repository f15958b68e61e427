"""What the agent keeps on the PC: its registration, its key, and the unsent changes.

One directory per user (``PORTPAL_AGENT_HOME``, else the platform's config place), mode
0700, its files 0600: the private key never leaves it and no other user can read it.
Every file is written whole (a temporary file, fsync, rename), so a crash or a pulled plug
leaves the old version or the new one, never half of either.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

__all__ = ["QUEUE_LIMIT", "AgentFiles", "Queue", "Registration", "default_home"]

QUEUE_LIMIT = 100  # changes kept while the bot is unreachable; older ones are dropped


def default_home() -> Path:
    """``PORTPAL_AGENT_HOME``, else ``%APPDATA%\\PortPal\\agent`` (Windows),
    ``~/Library/Application Support/PortPal/agent`` (macOS), ``$XDG_CONFIG_HOME/portpal-agent``."""
    if env := os.environ.get("PORTPAL_AGENT_HOME"):
        return Path(env).expanduser()
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming") / "PortPal" / "agent"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "PortPal" / "agent"
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "portpal-agent"


@dataclass
class Registration:
    """Where the agent reports, as which agent, and the last sequence number it used."""

    server: str
    agent_id: str
    name: str
    seq: int = 0


@dataclass
class Queue:
    """Changes not yet accepted by the bot. ``batch``: the ones sent under ``batch_seq``
    (resent under the same number until the bot answers, so it can tell a resend from
    new news); ``pending``: the ones after; ``dropped``: changes lost to the limit."""

    batch_seq: int = 0  # 0: no batch under way
    batch: list[dict[str, Any]] = field(default_factory=list)
    batch_tried: bool = False  # sent at least once (a refusal as a replay then means it arrived)
    pending: list[dict[str, Any]] = field(default_factory=list)
    dropped: int = 0


class AgentFiles:
    def __init__(self, home: Path | None = None) -> None:
        self.home = home or default_home()

    @property
    def registration_file(self) -> Path:
        return self.home / "agent.json"

    @property
    def key_file(self) -> Path:
        return self.home / "agent.key"

    @property
    def queue_file(self) -> Path:
        return self.home / "queue.json"

    def _write(self, path: Path, data: bytes) -> None:
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    # ------------------------------------------------------------------ registration and key
    def save(self, registration: Registration, key: Ed25519PrivateKey | None = None) -> None:
        if key is not None:
            raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
            self._write(self.key_file, base64.b64encode(raw) + b"\n")
        self._write(self.registration_file, json.dumps(asdict(registration), indent=2).encode())

    def load(self) -> tuple[Registration, Ed25519PrivateKey] | None:
        """The registration and key, or None when this PC is not paired. A damaged file
        raises ValueError naming it."""
        if not self.registration_file.exists():
            return None
        try:
            registration = Registration(**json.loads(self.registration_file.read_text(encoding="utf-8")))
            key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(self.key_file.read_bytes().strip()))
        except (OSError, ValueError, TypeError) as exc:
            raise ValueError(f"the pairing files in {self.home} are damaged ({exc}); pair again") from exc
        return registration, key

    def forget(self) -> None:
        """Delete the registration, key and queue (after unpairing)."""
        for path in (self.registration_file, self.key_file, self.queue_file):
            path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ queue
    def load_queue(self) -> Queue:
        try:
            return Queue(**json.loads(self.queue_file.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return Queue()
        except (ValueError, TypeError):
            # A damaged queue only loses old changes: the next report carries the state now.
            return Queue()

    def save_queue(self, queue: Queue) -> None:
        self._write(self.queue_file, json.dumps(asdict(queue), ensure_ascii=False).encode())
