"""The Twilio emulator as the official `twilio` package and a webhook receiver see it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests
from flask import Flask, request
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator

from connectors.base import TransientError
from connectors.twilio import NumberRefused, TwilioAccount, TwilioMessages
from sandboxes.twilio import (
    DEMO_ACCOUNT_SID,
    DEMO_AUTH_TOKEN,
    SandboxConfig,
    TwilioFaults,
    TwilioSandbox,
    count_segments,
    create_app,
)
from tests.conftest import FakeClock, LiveServer

SENDER = "+15005550006"
TO = "+447700900123"  # Ofcom's range for drama: no real person's number


class Receiver:
    """A webhook endpoint that checks Twilio's signature as our app will."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bool]] = []
        self.event = threading.Event()
        app = Flask(__name__)

        @app.post("/hook")
        def hook() -> str:
            valid = RequestValidator(DEMO_AUTH_TOKEN).validate(
                request.url, request.form.to_dict(), request.headers.get("X-Twilio-Signature", ""))
            self.received.append((request.form.to_dict(), valid))
            self.event.set()
            return ""

        self.server = LiveServer(app)
        self.url = f"{self.server.url}/hook"


@pytest.fixture
def twilio(clock: FakeClock) -> Iterator[tuple[TwilioSandbox, LiveServer, TwilioFaults]]:
    state = TwilioSandbox(SandboxConfig(clock=clock, auto_progress=False))
    faults = TwilioFaults(create_app(state))
    server = LiveServer(faults)
    yield state, server, faults
    server.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.server.stop()


def messages(server: LiveServer, sender: str = SENDER) -> TwilioMessages:
    return TwilioMessages(TwilioAccount(DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN, sender, server.url))


def test_the_official_client_sends_fetches_and_lists(twilio, receiver) -> None:  # type: ignore[no-untyped-def]
    state, server, _ = twilio
    client = messages(server)
    sent = client.send(TO, "Invoice INV-1 is due.", status_callback=receiver.url)
    assert sent.sid.startswith("SM") and len(sent.sid) == 34
    assert (sent.status, sent.segments, sent.to) == ("queued", 1, TO)
    assert receiver.received == []  # no callback for the first status
    state.settle()
    assert [(params["MessageStatus"], valid) for params, valid in receiver.received] == [
        ("sent", True), ("delivered", True)]
    fetched = client.fetch(sent.sid)
    assert fetched.status == "delivered" and fetched.price == "-0.00790"
    raw = client.client.messages(sent.sid).fetch()
    assert raw.direction == "outbound-api" and raw.date_sent is not None
    assert raw.uri == f"/2010-04-01/Accounts/{DEMO_ACCOUNT_SID}/Messages/{sent.sid}.json"
    client.send("+4915112345678", "another")
    listed = client.client.messages.list(to=TO)
    assert [m.sid for m in listed] == [sent.sid]
    assert len(client.client.messages.list()) == 2
    assert len(client.client.messages.list(page_size=1)) == 2  # follows next_page_uri


def test_basic_auth_and_errors_in_twilios_shape(twilio) -> None:  # type: ignore[no-untyped-def]
    _, server, _ = twilio
    url = f"{server.url}/2010-04-01/Accounts/{DEMO_ACCOUNT_SID}/Messages.json"
    answer = requests.post(url, data={"To": TO, "From": SENDER, "Body": "x"},
                           auth=(DEMO_ACCOUNT_SID, "wrong"), timeout=5)
    assert answer.status_code == 401 and answer.json()["code"] == 20003
    answer = requests.post(url, data={"To": "07700 900123", "From": SENDER, "Body": "x"},
                           auth=(DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN), timeout=5)
    assert answer.status_code == 400
    assert answer.json() == {"code": 21211, "message": "Invalid 'To' Phone Number: 07700 900123",
                             "more_info": "https://www.twilio.com/docs/errors/21211",
                             "status": 400}
    with pytest.raises(NumberRefused) as refused:
        messages(server).send("12345", "x")
    assert refused.value.reason == "invalid_number"
    with pytest.raises(TwilioRestException):
        messages(server, sender="not a valid sender id").client.messages.create(
            to=TO, from_="not a valid sender id", body="x")
    assert messages(server, sender="Dunwell").send(TO, "alphanumeric sender").status == "queued"


def test_a_failing_number_ends_undelivered_or_failed(twilio, receiver) -> None:  # type: ignore[no-untyped-def]
    state, server, _ = twilio
    state.fail_number(TO, "undelivered", 30006)
    state.fail_number("+4915112345678", "failed", 30008)
    first = messages(server).send(TO, "x", status_callback=receiver.url)
    second = messages(server).send("+4915112345678", "y", status_callback=receiver.url)
    state.settle()
    assert messages(server).fetch(first.sid).status == "undelivered"
    assert messages(server).fetch(first.sid).error_code == 30006
    assert messages(server).fetch(second.sid).status == "failed"
    statuses = [(p["MessageSid"], p["MessageStatus"], p.get("ErrorCode"))
                for p, _ in receiver.received]
    assert (first.sid, "undelivered", "30006") in statuses
    assert (second.sid, "failed", "30008") in statuses
    assert (second.sid, "sent", None) not in statuses


def test_inbound_stop_is_signed_forwarded_and_blocks_sends_until_start(twilio, receiver) -> None:  # type: ignore[no-untyped-def]
    state, server, _ = twilio
    requests.post(f"{server.url}/_sandbox/inbound", timeout=5,
                  data={"From": TO, "To": SENDER, "Body": " stop ", "Url": receiver.url})
    (params, valid), = receiver.received
    assert valid and params["Body"] == " stop " and params["OptOutType"] == "STOP"
    with pytest.raises(NumberRefused) as refused:
        messages(server).send(TO, "x")
    assert refused.value.reason == "opted_out"
    state.receive(TO, SENDER, "START", url=receiver.url)
    assert receiver.received[-1][0]["OptOutType"] == "START"
    assert messages(server).send(TO, "x").status == "queued"


def test_lost_answer_sends_once_and_the_lookup_finds_it(twilio, clock) -> None:  # type: ignore[no-untyped-def]
    state, server, faults = twilio
    faults.add("lost_answer", method="POST", path=r"/Messages\.json$")
    since = clock()
    with pytest.raises(TransientError):
        messages(server).send(TO, "Reminder for INV-7")
    assert len(state.messages) == 1  # sent, though the answer never came
    found = messages(server).find(TO, "Reminder for INV-7", since)
    assert found is not None and found.sid == next(iter(state.messages))
    assert messages(server).find(TO, "Another text", since) is None
    assert messages(server).find(TO, "Reminder for INV-7", since + timedelta(minutes=1)) is None


def test_the_page_lists_texts(twilio) -> None:  # type: ignore[no-untyped-def]
    _, server, _ = twilio
    messages(server).send(TO, "Rechnung <RE-1> ist fällig")
    page = requests.get(f"{server.url}/_sandbox/messages", timeout=5)
    assert page.status_code == 200 and "Rechnung &lt;RE-1&gt; ist fällig" in page.text


@pytest.mark.parametrize(("body", "encoding", "segments"), [
    ("a" * 160, "GSM-7", 1), ("a" * 161, "GSM-7", 2), ("€" * 80, "GSM-7", 1),
    ("€" * 81, "GSM-7", 2), ("ł" * 70, "UCS-2", 1), ("ł" * 71, "UCS-2", 2),
    ("שלום" * 17, "UCS-2", 1), ("😀" * 35, "UCS-2", 1), ("😀" * 36, "UCS-2", 2),
])
def test_segments(body: str, encoding: str, segments: int) -> None:
    assert count_segments(body) == (encoding, segments)
