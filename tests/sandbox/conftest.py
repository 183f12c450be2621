"""The Xero sandbox fixtures of test_xero_sandbox, for its neighbours too."""

from tests.sandbox.test_xero_sandbox import served, start  # noqa: F401
