"""`python -m sandboxes.twilio [--port 5058] [--inbound-url URL] [--account-sid AC...]
[--auth-token ...]`: serve the Twilio emulator."""

from __future__ import annotations

import argparse
import os

from sandboxes.twilio import DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN, serve

parser = argparse.ArgumentParser(description="A local emulator of Twilio's Messages API.")
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=5058)
parser.add_argument("--inbound-url", default=None,
                    help="where customers' replies are posted (our /webhooks/twilio/inbound)")
# The account it answers to: the one the app is configured with, when run beside it (the demo).
parser.add_argument("--account-sid",
                    default=os.environ.get("TWILIO_ACCOUNT_SID") or DEMO_ACCOUNT_SID)
parser.add_argument("--auth-token",
                    default=os.environ.get("TWILIO_AUTH_TOKEN") or DEMO_AUTH_TOKEN)
args = parser.parse_args()
serve(host=args.host, port=args.port, inbound_url=args.inbound_url,
      account_sid=args.account_sid, auth_token=args.auth_token)
