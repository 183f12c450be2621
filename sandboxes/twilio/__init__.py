"""A local emulator of Twilio's Programmable Messaging (the Messages resource), for the demo
and tests: the official `twilio` package talks to it over HTTP when its API domain's base URL
is pointed here (`client.api.base_url`).

Same path, basic auth (Account SID and auth token), JSON field names, RFC 2822 dates, paging
(`messages`, `next_page_uri`), error bodies (`code`, `message`, `more_info`, `status`),
segments (GSM-7 or UCS-2), statuses with signed status callbacks, inbound texts with
Twilio's default STOP/START handling, and error 21610 for a text to a number that opted out.
`/_sandbox/...` is ours: the page of texts for the demo, inbound texts and failing numbers for
tests. See `sandbox.py` for the choices no document settles.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.serving import run_simple

from sandboxes.twilio.api import EXTENSION, bp, rejected
from sandboxes.twilio.faults import TwilioFaults
from sandboxes.twilio.sandbox import (
    DEMO_ACCOUNT_SID,
    DEMO_AUTH_TOKEN,
    Rejected,
    SandboxConfig,
    TwilioSandbox,
    signature,
)
from sandboxes.twilio.segments import count_segments

__all__ = ["DEMO_ACCOUNT_SID", "DEMO_AUTH_TOKEN", "SandboxConfig", "TwilioFaults",
           "TwilioSandbox", "count_segments", "create_app", "serve", "signature"]


def create_app(sandbox: TwilioSandbox | None = None) -> Flask:
    app = Flask(__name__)
    app.extensions[EXTENSION] = sandbox or TwilioSandbox()
    app.register_blueprint(bp)
    app.register_error_handler(Rejected, rejected)
    return app


def serve(host: str = "127.0.0.1", port: int = 5058, inbound_url: str | None = None,
          account_sid: str = DEMO_ACCOUNT_SID, auth_token: str = DEMO_AUTH_TOKEN) -> None:
    sandbox = TwilioSandbox(SandboxConfig(inbound_url=inbound_url, progress_delay=1.0,
                                          accounts={account_sid: auth_token}))
    print(f"Twilio sandbox on http://{host}:{port} (texts: /_sandbox/messages)", flush=True)
    run_simple(host, port, create_app(sandbox), threaded=True)
