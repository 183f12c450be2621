from __future__ import annotations

from datetime import time
from decimal import Decimal

import pytest

from rules import PolicyError, default_policy, policy_from_json, policy_to_json


def test_default_policy_round_trips_exactly() -> None:
    policy = default_policy()
    data = policy_to_json(policy)
    assert data == {
        "version": 1,
        "reminder_steps": [
            {"offset_days": -3, "template": "friendly_before", "channel": "provider_email"},
            {"offset_days": 0, "template": "due_today", "channel": "provider_email"},
            {"offset_days": 7, "template": "overdue_1", "channel": "provider_email"},
            {"offset_days": 21, "template": "overdue_2", "channel": "provider_email"},
        ],
        "send_time": "09:00:00", "send_window_hours": 8, "business_days_only": True,
        "min_amount_due": "0.01",
    }
    assert policy_from_json(data) == policy
    assert policy_from_json(policy_from_json(data).model_dump_json()) == policy
    assert policy.send_time == time(9) and policy.min_amount_due == Decimal("0.01")


@pytest.mark.parametrize(("change", "message"), [
    ({"reminder_steps": [{"offset_days": 3}, {"offset_days": 3}]}, "strictly increasing"),
    ({"reminder_steps": [{"offset_days": 7}, {"offset_days": -1}]}, "strictly increasing"),
    ({"reminder_steps": []}, "reminder_steps"),
    ({"reminder_steps": [{"offset_days": 400}]}, "reminder_steps.0.offset_days"),
    ({"reminder_steps": [{"offset_days": 1, "template": "Bad Name!"}]}, "template names"),
    ({"min_amount_due": "-1"}, "min_amount_due"),
    ({"version": 2}, "version"),
    ({"surprise": True}, "surprise"),
    ({"send_time": "20:00", "send_window_hours": 8}, "midnight"),
])
def test_bad_policies_are_refused_with_the_field_named(change: dict, message: str) -> None:
    data = {**policy_to_json(default_policy()), **change}
    with pytest.raises(PolicyError, match=message):
        policy_from_json(data)


def test_malformed_json_is_a_policy_error() -> None:
    with pytest.raises(PolicyError, match="not valid JSON"):
        policy_from_json("{nope")
