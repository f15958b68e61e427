"""The managed Rasa server: started, watched, restarted, stopped; the bot survives outages."""

from __future__ import annotations

import asyncio
import os
import signal

import httpx
import pytest

from bot.assistant import Assistant
from bot.core.events import TextMessage
from nlu.gazetteer import default_gazetteer
from nlu.rasa import RasaInterpreter, ResilientInterpreter
from nlu.server import RasaServer, RasaServerError

pytestmark = pytest.mark.rasa


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_degraded_mode_mid_conversation(rasa_bin, rasa_model, store, lexical, tmp_path):
    """Rasa stops mid-conversation: the lexical engine answers; Rasa starts again: it answers."""
    server = RasaServer(rasa_bin, rasa_model, log_path=tmp_path / "rasa.log")
    await server.start()
    client = RasaInterpreter(server.url, default_gazetteer())
    nlu = ResilientInterpreter(client, lexical, retry_after=0.2)
    assistant = Assistant(store, nlu)
    try:
        first = await assistant.handle("test", "c1", TextMessage("宝鸡哪里可以办卡"))
        assert first.answer is not None and "红旗路36号" in first.answer.text
        assert nlu.name == "rasa" and not nlu.degraded

        await server.stop()
        during = await assistant.handle("test", "c1", TextMessage("珠海海关数据分中心的电话是多少"))
        assert during.answer is not None and "0756-8125566" in during.answer.text
        assert nlu.degraded and nlu.name == "lexical"
        # The conversation is in Zhuhai now; its next question is answered there.
        also = await assistant.handle("test", "c1", TextMessage("横琴的检验检疫机构选哪个"))
        assert also.answer is not None and "485400" in also.answer.text

        await server.start()
        await asyncio.sleep(0.3)  # past retry_after
        after = await assistant.handle("test", "c1", TextMessage("安康有几个办卡网点"))
        assert after.answer is not None and "汉阴" in after.answer.text
        assert not nlu.degraded and nlu.name == "rasa"
        transcript = store.transcript("test", "c1")
        assert len([m for m in transcript if m.direction == "in"]) == 4
    finally:
        await client.aclose()
        await server.stop()


async def test_a_killed_server_is_restarted_and_stop_leaves_no_process(rasa_bin, rasa_model, tmp_path):
    server = RasaServer(rasa_bin, rasa_model, log_path=tmp_path / "rasa.log")
    await server.start()
    try:
        first_pid = server.pid
        assert first_pid is not None
        os.killpg(first_pid, signal.SIGKILL)
        async with httpx.AsyncClient(trust_env=False) as http:
            for _ in range(480):
                await asyncio.sleep(0.5)
                if server.restarts == 1:
                    break
            assert server.restarts == 1, "the watcher did not restart the server"
            assert server.pid != first_pid
            reply = await http.post(f"{server.url}/model/parse", json={"text": "宝鸡哪里可以办卡"})
            assert reply.json()["intent"]["name"] == "faq"
    finally:
        await server.stop()
    second_pid = server.pid
    assert second_pid is not None and not _alive(second_pid)


async def test_missing_model_or_rasa_is_a_clear_error(rasa_bin, tmp_path):
    with pytest.raises(RasaServerError, match="no trained model"):
        await RasaServer(rasa_bin, tmp_path / "none.tar.gz").start()
    model = tmp_path / "model.tar.gz"
    model.write_bytes(b"")
    with pytest.raises(RasaServerError, match="no rasa executable"):
        await RasaServer(tmp_path / "rasa", model).start()
