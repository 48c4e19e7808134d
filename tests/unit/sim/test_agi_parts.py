"""FastAGI, Asterisk's side, without sockets: argument parsing, command table, replies,
the environment, variables."""

from __future__ import annotations

from pathlib import Path

from app.sim.agi_client import (
    DEAD_REPLY,
    UNKNOWN_REPLY,
    env_fields,
    environment,
    lookup,
    match,
    parse_args,
    substitute,
    usage_reply,
)
from app.sim.channels import Channel
from app.sim.clock import Kernel
from app.sim.conf import QueuesConfig
from app.sim.pbx import Pbx, PbxConfig

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ami"


def test_parse_args_like_res_agi() -> None:
    assert parse_args('STREAM FILE custom/welcome ""') == ["STREAM", "FILE", "custom/welcome", ""]
    assert parse_args('SET VARIABLE QUEUE "dagpenge"') == ["SET", "VARIABLE", "QUEUE", "dagpenge"]
    assert parse_args('VERBOSE "FastAGI routed 4520001 to dagpenge" 1') == [
        "VERBOSE",
        "FastAGI routed 4520001 to dagpenge",
        "1",
    ]
    assert parse_args(r'SET VARIABLE X "a \"quoted\" word"') == [
        "SET",
        "VARIABLE",
        "X",
        'a "quoted" word',
    ]
    assert parse_args("GET  DATA   acd/menu-main 5000 1 ") == [
        "GET",
        "DATA",
        "acd/menu-main",
        "5000",
        "1",
    ]


def test_command_table() -> None:
    full = match(["GET", "FULL", "VARIABLE", "${X}"])
    assert full is not None and full.words == ("get", "full", "variable")
    plain = match(["get", "variable", "X"])
    assert plain is not None and plain.words == ("get", "variable")
    assert match(["SAY", "ALPHA", "x"]) is None
    assert UNKNOWN_REPLY == "510 Invalid or unknown command"
    assert DEAD_REPLY == "511 Command Not Permitted on a dead channel or intercept routine"
    sf = match(["STREAM", "FILE"])
    assert sf is not None
    assert usage_reply(sf).splitlines() == [
        "520-Invalid command syntax.  Proper usage follows:",
        " Usage: STREAM FILE <filename> <escape digits> [sample offset]",
        "520 End of proper usage.",
    ]


def _pbx() -> Pbx:
    return Pbx(Kernel(1795362443.0, "fast"), PbxConfig(queues=QueuesConfig(queues=())))


def _chan() -> Channel:
    return Channel(
        name="PJSIP/trunk-0000000c",
        uniqueid="1795362443.12",
        linkedid="1795362443.12",
        device="PJSIP/trunk",
        created=1795362443.0,
        cid_num="4520001",
        cid_name="Borger 1",
        context="from-trunk",
        exten="82565683",
        priority=2,
        dnid="82565683",
    )


def test_environment_is_the_captures_byte_for_byte() -> None:
    raw = (FIXTURES / "08_fastagi.agi.rx.raw").read_bytes()
    env = raw[: raw.index(b"\n\n") + 2]
    fields = env_fields(
        _chan(), "127.0.0.1:4573", "ivr", ["lab", "82565683"], "22.11.0-rc1", 139754645063360
    )
    assert environment(fields) == env


def test_variables_functions_and_substitution() -> None:
    pbx, chan = _pbx(), _chan()
    chan.linkedid = "1795362440.9"
    chan.vars["ACD_ROUTE"] = "queue"
    pbx.globals["ACD_FALLBACK_QUEUE"] = "kontanthjaelp"
    assert lookup(pbx, chan, "CHANNEL(linkedid)") == "1795362440.9"
    assert lookup(pbx, chan, "UNIQUEID") == "1795362443.12"
    assert lookup(pbx, chan, "ACD_ROUTE") == "queue"
    assert lookup(pbx, chan, "ACD_FALLBACK_QUEUE") == "kontanthjaelp"
    assert lookup(pbx, chan, "NOT_SET") is None
    assert substitute(pbx, chan, "${CALLERID(num)}") == "4520001"
    assert substitute(pbx, chan, "${CALLERID(name)}/${EXTEN}/${NOPE}") == "Borger 1/82565683/"
    # the PBX's clock, which the IVR can read for opening hours: the virtual one
    assert lookup(pbx, chan, "EPOCH") == "1795362443"
    assert substitute(pbx, chan, "${STRFTIME(${EPOCH},Europe/Copenhagen,%Y-%m-%d %H:%M)}") == (
        "2026-11-22 16:47"
    )
