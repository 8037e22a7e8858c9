"""``reviewer settings show`` and ``reviewer settings set``: the settings people change, validated
as the admin page validates them; a refused value changes nothing."""

from __future__ import annotations

import pytest

DEFAULTS = ["labels_per_item 1", "risk_target 0.05", "risk_confidence 0.95", "audit_rate 0.05"]


def test_show_lists_every_setting_with_its_default(run_cli):
    result = run_cli("settings", "show")
    assert result.exit_code == 0 and result.output.splitlines() == DEFAULTS


@pytest.mark.parametrize(
    "name, value, shown",
    [
        ("labels_per_item", "3", "labels_per_item 3"),
        ("risk_target", "0.02", "risk_target 0.02"),
        ("risk_confidence", "0.99", "risk_confidence 0.99"),
        ("audit_rate", "0", "audit_rate 0.0"),
    ],
)
def test_set_changes_one_setting(run_cli, name, value, shown):
    result = run_cli("settings", "set", name, value)
    assert result.exit_code == 0 and result.output.strip() == shown
    assert shown in run_cli("settings", "show").output.splitlines()


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("risk_target", "1.5", "risk_target: the risk target must be above 0 and below 1"),
        ("risk_target", "nan", "risk_target: the risk target must be above 0 and below 1"),
        ("risk_confidence", "0", "risk_confidence: the risk confidence must be above 0"),
        ("audit_rate", "-0.1", "audit_rate: the audit rate must be at least 0 and below 1"),
        ("labels_per_item", "zero", "labels_per_item: invalid literal for int()"),
        ("labels_per_item", "0", "labels_per_item: labels per item must be"),
    ],
)
def test_a_bad_value_is_refused_and_changes_nothing(run_cli, name, value, message):
    result = run_cli("settings", "set", name, value)
    assert result.exit_code == 2 and message in result.output
    assert run_cli("settings", "show").output.splitlines() == DEFAULTS


def test_an_unknown_setting_names_the_choices(run_cli):
    result = run_cli("settings", "set", "classes", "a,b")
    assert result.exit_code == 2 and "'classes' is not one of" in result.output
