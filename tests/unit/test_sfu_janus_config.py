"""Rendering Janus's configuration for an SFU node."""

from __future__ import annotations

import stat
from pathlib import Path

from devstack.janus import JanusRunner, render_configs
from devstack.netns import NetnsSpec


def _fake_lib(tmp_path: Path) -> Path:
    lib = tmp_path / "lib"
    for sub, names in {
        "plugins": ["libjanus_videoroom.so", "libjanus_echotest.so", "libjanus_sip.so"],
        "transports": ["libjanus_websockets.so", "libjanus_http.so", "libjanus_pfunix.so"],
        "events": ["libjanus_sampleevh.so"],
        "loggers": ["libjanus_jsonlog.so"],
    }.items():
        (lib / sub).mkdir(parents=True)
        for name in [*names, *(n + ".1" for n in names)]:
            (lib / sub / name).touch()
    return lib


def test_only_videoroom_and_websockets_stay_enabled(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    main = render_configs(conf, ws_ip="10.1.2.3", ws_port=8288, ice_interface="vrtn9",
                          admin_key='k"ey', lib_dir=_fake_lib(tmp_path))  # fmt: skip
    text = main.read_text()
    assert 'disable = "libjanus_echotest.so,libjanus_sip.so"' in text
    assert 'disable = "libjanus_http.so,libjanus_pfunix.so"' in text
    assert 'ice_enforce_list = "vrtn9"' in text and "ipv6 = false" in text
    assert 'interface = "10.1.2.3"' in text  # never Janus's 127.0.0.1 fallback
    assert 'rtp_port_range = "20000-20999"' in text and f'configs_folder = "{conf}"' in text
    assert "stun_server" not in text and "turn_server" not in text
    ws = (conf / "janus.transport.websockets.jcfg").read_text()
    assert 'ws_ip = "10.1.2.3"' in ws and "ws_port = 8288" in ws and "admin_ws = false" in ws
    room = (conf / "janus.plugin.videoroom.jcfg").read_text()
    assert 'admin_key = "k\\"ey"' in room and "lock_rtp_forward = true" in room
    assert "room-1234" not in room  # no demo rooms
    for path in conf.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_runner_keeps_its_admin_key_out_of_repr(tmp_path: Path) -> None:
    runner = JanusRunner(NetnsSpec(), tmp_path, tmp_path, ws_port=8288)
    assert len(runner.admin_key) >= 24 and runner.admin_key not in repr(runner)
    assert runner.ws_url == "ws://10.213.0.2:8288"
