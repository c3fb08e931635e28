"""Parsing entries of an SFU node's command stream, and the agent's settings."""

from __future__ import annotations

import time

import pytest

from sfu.commands import entries_of, entry_age_s, parse_entry
from sfu.settings import SfuSettings
from voxrelay.protocol import Publish, Trickle, dump


def _now_id() -> str:
    return f"{int(time.time() * 1000)}-0"


def test_a_good_entry_parses() -> None:
    cmd = Trickle(session_id="session-1", connection_id="c", candidate=None)
    entry = parse_entry(_now_id(), {"msg": dump(cmd)}, max_age_s=60)
    assert entry is not None and entry.command == cmd


@pytest.mark.parametrize(
    "fields",
    [{}, {"msg": "{nope"}, {"msg": "[]"}, {"msg": '{"type": "publish"}'},
     {"msg": '{"type": "dance", "session_id": "session-1"}'}],
)  # fmt: skip
def test_bad_entries_are_skipped(fields: dict[str, str]) -> None:
    assert parse_entry(_now_id(), fields, max_age_s=60) is None


def test_stale_entries_are_skipped() -> None:
    cmd = Publish(session_id="session-1", connection_id="c", sdp="v=0")
    old_id = f"{int((time.time() - 120) * 1000)}-3"
    assert 119 < entry_age_s(old_id) < 125
    assert parse_entry(old_id, {"msg": dump(cmd)}, max_age_s=60) is None


def test_entries_of_both_reply_shapes() -> None:
    resp2 = [["stream", [("1-0", {"msg": "a"}), ("2-0", {"msg": "b"})]]]
    resp3 = {"stream": [["1-0", {"msg": "a"}], ["2-0", {"msg": "b"}]]}
    expected = [("1-0", {"msg": "a"}), ("2-0", {"msg": "b"})]
    assert entries_of(resp2) == expected and entries_of(resp3) == expected
    assert entries_of(None) == [] and entries_of([]) == []


def test_settings_read_the_shared_env_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXRELAY_SFU_NODE_ID", "node-7")
    monkeypatch.setenv("VOXRELAY_SFU_JANUS_ADMIN_KEY", "s3cret")
    monkeypatch.setenv("VOXRELAY_REDIS_URL", "redis://127.0.0.1:7000")
    monkeypatch.setenv("VOXRELAY_MANAGEMENT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("VOXRELAY_AWS_REGION", "eu-west-1")
    monkeypatch.setenv("REDIS_URL", "redis://wrong:1")
    settings = SfuSettings()  # type: ignore[call-arg]
    assert settings.node_id == "node-7" and settings.redis_url == "redis://127.0.0.1:7000"
    assert settings.management_url == "http://127.0.0.1:9000"
    assert settings.aws_region == "eu-west-1"
    assert "s3cret" not in repr(settings)
    assert settings.janus_admin_key.get_secret_value() == "s3cret"
