"""`python -m sandboxes.twilio [--port 5058] [--inbound-url URL]`: serve the Twilio emulator."""

from __future__ import annotations

import argparse

from sandboxes.twilio import serve

parser = argparse.ArgumentParser(description="A local emulator of Twilio's Messages API.")
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=5058)
parser.add_argument("--inbound-url", default=None,
                    help="where customers' replies are posted (our /webhooks/twilio/inbound)")
args = parser.parse_args()
serve(host=args.host, port=args.port, inbound_url=args.inbound_url)
