"""The ``portpal-agent`` command: status, pair, run, unpair.

argparse rather than typer (which the ``portpal`` command uses): the agent stays resident
on the user's PC and typer with its dependencies costs about 16 MB of the 40 MB the agent
may use (``bench/card_agent.py``). Messages are for the user at the PC: Chinese.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import socket
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from cardagent.files import AgentFiles, Registration

__all__ = ["main"]

DEFAULT_SERVER = "http://127.0.0.1:8080"

_NO_SERVICE_HINT = (
    "请启动智能卡服务：Windows 为“Smart Card”服务（services.msc），"
    "Linux 为 pcscd（sudo systemctl start pcscd.socket），macOS 自带（请重新插拔读卡器）。"
)
_PAIR_REFUSED = {
    "unknown": "没有聊天在等这个配对码：请在聊天中重新发送 /pair，用新的配对码。",
    "expired": "配对码已过期（10 分钟内有效）：请在聊天中重新发送 /pair。",
    "used": "这个配对码已经用过了：请在聊天中重新发送 /pair。",
    "malformed": "配对码格式不对：应为 8 位，如 ABCD-EFGH。",
    "locked": "错误的配对码太多，这台电脑暂时被锁定：请 10 分钟后再试。",
    "rate_limited": "请求太频繁：请稍后再试。",
    "https_required": "机器人不在这台电脑上，必须用 https:// 地址。",
}


def _out(text: str) -> None:
    print(text, flush=True)


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _status(args: argparse.Namespace) -> int:
    from cardagent.monitor import snapshot

    now = snapshot()
    if args.json:
        _out(json.dumps(asdict(now), ensure_ascii=False))
    elif not now.service:
        _out(f"智能卡服务不可用：{now.error}\n{_NO_SERVICE_HINT}")
    elif not now.readers:
        _out("智能卡服务：正常\n未检测到读卡器：请检查读卡器（或 UKey）是否插好、驱动是否已安装。")
    else:
        lines = ["智能卡服务：正常", "读卡器："]
        for reader in now.readers:
            state = f"已插卡（ATR {reader.atr}）" if reader.card else "未插卡"
            lines.append(f"  {reader.name}：{state}")
        _out("\n".join(lines))
    return 0 if now.service else 1


def _files(args: argparse.Namespace) -> AgentFiles:
    from cardagent.files import AgentFiles

    return AgentFiles(Path(args.home) if args.home else None)


def _pair(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from cardagent.client import RefusedError, UnreachableError, check_server, pair
    from cardagent.files import Queue, Registration
    from cardagent.protocol import normalize_code

    try:
        code = normalize_code(args.code)
    except ValueError as exc:
        _err(f"配对码格式不对：应为 8 位，如 ABCD-EFGH（不用 0、O、1、I、L、U、V）。（{exc}）")
        return 2
    try:
        server = check_server(args.server)
    except ValueError as exc:
        _err(f"机器人地址不对：{exc}")
        return 2
    files = _files(args)
    try:
        old = files.load()
    except ValueError:
        old = None
    key = Ed25519PrivateKey.generate()
    name = (args.name or socket.gethostname() or "PC").strip()[:100]
    try:
        answer = pair(server, code, key, name)
    except RefusedError as exc:
        _err(f"配对失败：{_PAIR_REFUSED.get(exc.error, exc.detail)}")
        return 1
    except UnreachableError as exc:
        _err(f"连不上机器人 {server}：{exc}\n请检查地址和网络（地址见聊天中 /pair 的提示）。")
        return 1
    if old is not None and (old[0].server != server or old[0].agent_id != answer["agent_id"]):
        _unpair_quietly(old[0], old[1])
    files.save(Registration(server, str(answer["agent_id"]), str(answer.get("name") or name)), key)
    files.save_queue(Queue())  # changes queued for another registration are not this one's
    _out(f"已连接：这台电脑（{answer.get('name') or name}）已和聊天配对。")
    _out("现在运行 portpal-agent run 开始上报读卡器和卡片状态（保持运行即可）。")
    return 0


def _unpair_quietly(registration: Registration, key: Ed25519PrivateKey) -> None:
    """Revoke the registration a new pairing replaces, if the bot can be reached."""
    from cardagent.client import RefusedError, UnreachableError, post_signed
    from cardagent.protocol import PATH_UNPAIR

    with contextlib.suppress(RefusedError, UnreachableError):
        post_signed(registration.server, PATH_UNPAIR, registration.agent_id, key, registration.seq + 1, {})


def _run(args: argparse.Namespace) -> int:
    from cardagent.runner import Runner

    files = _files(args)
    try:
        loaded = files.load()
    except ValueError as exc:
        _err(str(exc))
        return 2
    if loaded is None:
        _err("这台电脑还没有配对：请在聊天中发送 /pair，再运行 portpal-agent pair 配对码。")
        return 2
    registration, key = loaded
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        stream=sys.stderr,
    )
    runner = Runner(files, registration, key, heartbeat=args.heartbeat)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: runner.stop())
    logging.getLogger("portpal-agent").info(
        "卡片助手已启动：电脑 %s 向 %s 上报（Ctrl-C 停止）", registration.name, registration.server
    )
    code = runner.run()
    logging.getLogger("portpal-agent").info("卡片助手已停止")
    return code


def _unpair(args: argparse.Namespace) -> int:
    from cardagent.client import RefusedError, UnreachableError, post_signed
    from cardagent.protocol import PATH_UNPAIR

    files = _files(args)
    try:
        loaded = files.load()
    except ValueError:
        files.forget()
        _out("本机的配对文件已损坏，已删除；如聊天中仍显示已连接，请在聊天中发送 /unpair。")
        return 0
    if loaded is None:
        _out("这台电脑没有配对。")
        return 0
    registration, key = loaded
    registration.seq += 1
    try:
        post_signed(registration.server, PATH_UNPAIR, registration.agent_id, key, registration.seq, {})
    except UnreachableError as exc:
        _err(f"连不上机器人，未能解除配对：{exc}\n可以稍后重试，或在聊天中发送 /unpair。")
        return 1
    except RefusedError as exc:
        if exc.error not in {"revoked", "unknown"}:
            _err(f"机器人拒绝了解除配对：{exc.detail}\n可以在聊天中发送 /unpair。")
            return 1
    files.forget()
    _out(f"已解除配对：这台电脑（{registration.name}）不再向机器人上报。")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="portpal-agent", description="PortPal 卡片助手：把这台电脑上的读卡器和卡片状态告诉机器人。"
    )
    parser.add_argument("--home", help="配对文件所在目录（默认 PORTPAL_AGENT_HOME 或系统的配置目录）")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    status = commands.add_parser("status", help="显示读卡器和卡片（不需要配对）")
    status.add_argument("--json", action="store_true", help="输出一个 JSON 对象")
    status.set_defaults(func=_status)
    pair = commands.add_parser("pair", help="用聊天中 /pair 给出的配对码连接机器人")
    pair.add_argument("code", help="配对码，如 ABCD-EFGH")
    pair.add_argument("--server", default=DEFAULT_SERVER, help=f"机器人的地址（默认 {DEFAULT_SERVER}）")
    pair.add_argument("--name", help="这台电脑在聊天中显示的名字（默认主机名）")
    pair.set_defaults(func=_pair)
    run = commands.add_parser("run", help="持续上报读卡器和卡片变化（前台运行，Ctrl-C 停止）")
    run.add_argument("--heartbeat", type=float, default=30.0, help=argparse.SUPPRESS)
    run.add_argument("-v", "--verbose", action="store_true", help="更详细的日志")
    run.set_defaults(func=_run)
    unpair = commands.add_parser("unpair", help="解除配对，删除本机的密钥")
    unpair.set_defaults(func=_unpair)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(args.func(args))
