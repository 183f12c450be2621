"""Texts: Twilio's status callbacks and inbound replies (STOP/START), and the SMS settings."""
