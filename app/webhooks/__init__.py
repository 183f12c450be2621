"""Provider webhooks: verified, validated, stored once, and handed to a worker."""
