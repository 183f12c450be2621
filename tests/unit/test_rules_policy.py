from __future__ import annotations

import json
from datetime import time
from decimal import Decimal
from typing import Any

import pytest

from rules import (
    Policy,
    PolicyError,
    ReminderStep,
    default_policy,
    policy_from_json,
    policy_to_json,
)

V1_JSON = {
    "version": 1,
    "reminder_steps": [
        {"offset_days": -3, "template": "friendly_before", "channel": "provider_email"},
        {"offset_days": 0, "template": "due_today", "channel": "provider_email"},
        {"offset_days": 7, "template": "overdue_1", "channel": "provider_email"},
        {"offset_days": 21, "template": "overdue_2", "channel": "provider_email"},
    ],
    "send_time": "09:00:00", "send_window_hours": 8, "business_days_only": True,
    "min_amount_due": "0.01",
    "statement_day": None,
}
EMPTY_SECTIONS = {
    "repeat": None, "language": "en", "late_fees": [], "early_payment_discount": None,
    "payment_plans": {"offsets": [-3, 0, 3], "grace_days": 3, "channel": "provider_email",
                      "template": "instalment", "tone": "friendly"},
    "escalation": {"call_task": None, "stop_service": None, "demand_letter": None,
                   "agency_case": None},
}
DEFAULT_JSON = {
    **V1_JSON, "version": 2,
    "reminder_steps": [
        {"offset_days": -3, "template": "friendly_before", "channel": "provider_email",
         "tone": "friendly"},
        {"offset_days": 0, "template": "due_today", "channel": "provider_email",
         "tone": "friendly"},
        {"offset_days": 7, "template": "overdue_1", "channel": "provider_email", "tone": "firm"},
        {"offset_days": 21, "template": "overdue_2", "channel": "provider_email",
         "tone": "final"},
    ],
    **EMPTY_SECTIONS,
}


def test_default_policy_round_trips_exactly() -> None:
    policy = default_policy()
    data = policy_to_json(policy)
    assert data == DEFAULT_JSON
    assert policy_from_json(data) == policy
    assert policy_from_json(json.dumps(data)) == policy
    assert policy_from_json(policy.model_dump_json()) == policy
    assert policy.send_time == time(9) and policy.min_amount_due == Decimal("0.01")


def test_a_custom_policy_round_trips_with_its_decimal_intact() -> None:
    policy = Policy(
        reminder_steps=(ReminderStep(offset_days=-365), ReminderStep(offset_days=365,
                                                                     template="last-call_2")),
        send_time=time(7, 30), send_window_hours=3, business_days_only=False,
        min_amount_due=Decimal("10.50"))
    data = policy_to_json(policy)
    assert data["min_amount_due"] == "10.50" and data["send_time"] == "07:30:00"
    assert policy_from_json(data) == policy
    assert policy_from_json(json.dumps(data)).min_amount_due == Decimal("10.50")


def test_amounts_in_json_text_never_pass_through_a_float() -> None:
    text = json.dumps({**DEFAULT_JSON, "min_amount_due": "X"}).replace('"X"', "0.10")
    amount = policy_from_json(text).min_amount_due
    assert str(amount) == "0.10" and isinstance(amount, Decimal)


def test_defaults_fill_everything_but_the_steps() -> None:
    policy = policy_from_json({"reminder_steps": [{"offset_days": 0}]})
    assert policy_to_json(policy) == {
        "version": 2,
        "reminder_steps": [{"offset_days": 0, "template": "reminder",
                            "channel": "provider_email", "tone": "friendly"}],
        "send_time": "09:00:00", "send_window_hours": 8, "business_days_only": True,
        "min_amount_due": "0.01", "statement_day": None, **EMPTY_SECTIONS,
    }


def test_a_version_1_body_is_read_as_version_2_with_its_meaning_kept() -> None:
    policy = policy_from_json(V1_JSON)
    assert policy.version == 2
    assert [(s.offset_days, s.template, s.tone) for s in policy.reminder_steps] == [
        (-3, "friendly_before", "friendly"), (0, "due_today", "friendly"),
        (7, "overdue_1", "friendly"), (21, "overdue_2", "friendly")]
    assert policy.late_fees == () and policy.escalation.demand_letter is None


@pytest.mark.parametrize(("change", "message"), [
    ({"reminder_steps": [{"offset_days": 3}, {"offset_days": 3}]},
     "reminder_steps: offset_days must be strictly increasing: step 1 has 3 after 3 in step 0"),
    ({"reminder_steps": [{"offset_days": 7}, {"offset_days": 9}, {"offset_days": -1}]},
     "reminder_steps: offset_days must be strictly increasing: step 2 has -1 after 9 in step 1"),
    ({"reminder_steps": [{"offset_days": -366}]},
     "reminder_steps.0.offset_days: Input should be greater than or equal to -365"),
    ({"reminder_steps": [{"offset_days": 0}, {"offset_days": 400}]},
     "reminder_steps.1.offset_days: Input should be less than or equal to 365"),
    ({"reminder_steps": [{"offset_days": True}]},
     "reminder_steps.0.offset_days: Input should be a valid integer"),
    ({"reminder_steps": [{"offset_days": 1, "template": "Bad Name!"}]},
     "reminder_steps.0.template: template name 'Bad Name!' must be 1 to 64 characters"
     " of a-z, 0-9, '_' or '-'"),
    ({"reminder_steps": [{"offset_days": 1, "template": "reminder\n"}]},
     "reminder_steps.0.template: template name 'reminder\\n' must be"),
    ({"reminder_steps": [{"offset_days": 1, "template": ""}]},
     "reminder_steps.0.template: template name '' must be"),
    ({"reminder_steps": [{"offset_days": 1, "template": "a" * 65}]},
     "reminder_steps.0.template: template name 'aaaa"),
    ({"reminder_steps": [{"offset_days": 1, "channel": "fax"}]},
     "reminder_steps.0.channel: Input should be 'provider_email', 'dunwell_email', 'note',"
     " 'call_task' or 'sms'"),
    ({"reminder_steps": [{"offset_days": 1, "colour": "red"}]},
     "reminder_steps.0.colour: Extra inputs are not permitted"),
    ({"reminder_steps": []},
     "reminder_steps: Tuple should have at least 1 item after validation, not 0"),
    ({"reminder_steps": [{"offset_days": n} for n in range(21)]},
     "reminder_steps: Tuple should have at most 20 items after validation, not 21"),
    ({"min_amount_due": "-1"}, "min_amount_due: Input should be greater than or equal to 0"),
    ({"min_amount_due": "NaN"}, "min_amount_due: Input should be a finite number"),
    ({"min_amount_due": "lots"}, "min_amount_due: Input should be a valid decimal"),
    ({"version": 3}, "version: Input should be 2"),
    ({"surprise": True}, "surprise: Extra inputs are not permitted"),
    ({"send_window_hours": 0}, "send_window_hours: Input should be greater than or equal to 1"),
    ({"send_window_hours": 25}, "send_window_hours: Input should be less than or equal to 24"),
    ({"business_days_only": "sometimes"}, "business_days_only: Input should be a valid boolean"),
    ({"send_time": "25:00"}, "send_time: Input should be in a valid time format"),
    ({"send_time": "09:00:00+01:00"},
     "send_time: send_time is a local wall time: give it without a UTC offset"),
    ({"send_time": "20:00:00", "send_window_hours": 8},
     "policy: send_time 20:00:00 plus send_window_hours 8 must end by midnight"),
])
def test_bad_policies_are_refused_with_the_field_named(change: dict[str, Any],
                                                       message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        policy_from_json({**DEFAULT_JSON, **change})
    assert str(caught.value).startswith(message)
    assert isinstance(caught.value, ValueError)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(PolicyError) as caught:
        policy_from_json({**DEFAULT_JSON, "min_amount_due": "-1", "send_window_hours": 0})
    assert str(caught.value) == (
        "send_window_hours: Input should be greater than or equal to 1; "
        "min_amount_due: Input should be greater than or equal to 0")


def test_a_whole_day_window_from_midnight_is_allowed() -> None:
    policy = policy_from_json({**DEFAULT_JSON, "send_time": "00:00", "send_window_hours": 24})
    assert policy.send_window_hours == 24


def test_malformed_json_is_a_policy_error() -> None:
    with pytest.raises(PolicyError) as caught:
        policy_from_json("{nope")
    assert str(caught.value) == ("policy is not valid JSON: Expecting property name enclosed in"
                                 " double quotes at line 1 column 2")
    with pytest.raises(PolicyError) as caught:
        policy_from_json("[1, 2]")
    assert str(caught.value) == "policy must be a JSON object, not list"


def test_policies_are_frozen() -> None:
    policy = default_policy()
    with pytest.raises(ValueError, match="frozen"):
        policy.send_window_hours = 3  # type: ignore[misc]


def test_a_statutory_rule_for_a_country_without_a_rate_table_is_refused_when_saved() -> None:
    with pytest.raises(PolicyError) as caught:
        policy_from_json({**DEFAULT_JSON, "late_fees": [
            {"id": "interest", "rule": {"kind": "statutory_interest", "jurisdiction": "US"}}]})
    assert str(caught.value) == (
        "late_fees.0: no statutory rate table for US; known: DE, EU, GB, NO, PL")
    policy = policy_from_json({**DEFAULT_JSON, "late_fees": [
        {"id": "interest", "rule": {"kind": "statutory_interest", "jurisdiction": "DE"}}]})
    assert policy.late_fees[0].rule.kind == "statutory_interest"
