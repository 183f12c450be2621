"""`dunwell-sandbox xero|quickbooks` (or `python -m sandboxes ...`): serve one emulator, seeded
for today. Kept out of the product's CLI: nothing in the product imports the sandboxes."""

from __future__ import annotations

import click

from sandboxes import quickbooks, stripe, xero


@click.group(help="Local emulators of the providers' APIs.")
def main() -> None:
    pass


@main.command("xero", help="Serve the Xero sandbox (seeded).")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5055, type=int)
def serve_xero(host: str, port: int) -> None:
    xero.serve(host=host, port=port)


@main.command("quickbooks", help="Serve the QuickBooks Online sandbox (seeded).")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5056, type=int)
def serve_quickbooks(host: str, port: int) -> None:
    quickbooks.serve(host=host, port=port)


@main.command("stripe", help="Serve the Stripe sandbox (one account, the demo's keys).")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5059, type=int)
@click.option("--webhook-url", default=None, help="Where its signed webhooks go.")
def serve_stripe(host: str, port: int, webhook_url: str | None) -> None:
    stripe.serve(host=host, port=port, webhook_url=webhook_url)
