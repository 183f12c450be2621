"""The fault injector of the other sandboxes, answering in Twilio's error shape: a `lost_answer`
rule on `POST .../Messages.json` sends the text and drops the connection before the answer."""

from __future__ import annotations

import json

from sandboxes.faults import FaultInjector, FaultRule, WSGIApp

JSON = [("Content-Type", "application/json; charset=utf-8")]


class TwilioFaults(FaultInjector):
    def __init__(self, app: WSGIApp, seed: int | None = None) -> None:
        super().__init__(app, provider="xero", seed=seed)
        self.provider = "twilio"  # type: ignore[assignment]

    def _throttled(self, rule: FaultRule) -> tuple[str, list[tuple[str, str]], bytes]:
        body = json.dumps({"code": 20429, "message": "Too Many Requests",
                           "more_info": "https://www.twilio.com/docs/errors/20429",
                           "status": 429}).encode()
        return "429 Too Many Requests", JSON, body

    def _server_error(self) -> tuple[str, list[tuple[str, str]], bytes]:
        body = json.dumps({"code": 20500, "message": "Internal Server Error",
                           "more_info": "https://www.twilio.com/docs/errors/20500",
                           "status": 500}).encode()
        return "500 Internal Server Error", JSON, body
