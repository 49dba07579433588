"""The SLA clock of a rep (``RepConfig.working_deadline``): only the rep's working hours on its
working days, in its time zone, count; a rep with no hours counts wall-clock time. Fixed dates
(2026-01-05 is a Monday), nothing read from the real clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from allocation.constraints import RepConfig

H4 = timedelta(hours=4)


def _utc(day: int, hour: int, minute: int = 0, month: int = 1) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


OFFICE = RepConfig("r1", working_hours=("09:00", "17:00"))  # Monday to Friday, UTC


@pytest.mark.parametrize(("start", "span", "deadline"), [
    (_utc(6, 10), H4, _utc(6, 14)),                       # within one working day
    (_utc(6, 15), H4, _utc(7, 11)),                       # across a night: 2 h Tuesday, 2 h Wednesday
    (_utc(6, 6), H4, _utc(6, 13)),                        # given before the rep comes in
    (_utc(6, 20), H4, _utc(7, 13)),                       # given after the rep left
    (_utc(9, 16), H4, _utc(12, 12)),                      # Friday 16:00: 1 h Friday, 3 h Monday
    (_utc(10, 11), H4, _utc(12, 13)),                     # given on a Saturday
    (_utc(6, 10), timedelta(hours=8), _utc(7, 10)),       # a full working day is 8 h
    (_utc(6, 10), timedelta(hours=40), _utc(13, 10)),     # a working week later
    (_utc(6, 10), timedelta(0), _utc(6, 10)),
], ids=["same-day", "night", "before-hours", "after-hours", "friday-weekend", "saturday", "day", "week", "zero"])
def test_given_office_hours_when_the_sla_runs_then_nights_and_weekends_do_not_count(start, span, deadline):
    assert OFFICE.working_deadline(start, span) == deadline


def test_given_friday_16_when_saturday_comes_then_the_4_hour_sla_is_not_over():
    deadline = OFFICE.working_deadline(_utc(9, 16), H4)
    assert deadline is not None and deadline > _utc(11, 23, 59)  # not Saturday, not Sunday


def test_given_no_hours_when_the_sla_runs_then_it_is_wall_clock_time():
    rep = RepConfig("r2")
    assert rep.working_deadline(_utc(9, 16), H4) == _utc(9, 20)
    assert rep.working_deadline(_utc(10, 23), H4) == _utc(11, 3)  # a Saturday night counts too


def test_given_a_rep_in_new_york_when_the_sla_runs_then_local_hours_count():
    rep = RepConfig("r3", timezone="America/New_York", working_hours=("08:00", "14:00"))
    # Monday 20:00 UTC is 15:00 in New York: after hours; Tuesday 08:00-10:00 local = 13:00-15:00 UTC
    assert rep.working_deadline(_utc(5, 20), timedelta(hours=2)) == _utc(6, 15)


def test_given_a_daylight_saving_weekend_when_the_sla_runs_then_local_hours_still_count():
    rep = RepConfig("r4", timezone="Europe/Berlin", working_hours=("09:00", "17:00"))
    # Friday 27 March 16:00 CET (15:00 UTC); clocks go forward on Sunday 29 March; Monday 12:00 CEST is 10:00 UTC
    assert rep.working_deadline(_utc(27, 15, month=3), H4) == _utc(30, 10, month=3)


def test_given_weekend_working_days_when_the_sla_runs_then_saturday_counts():
    rep = RepConfig("r5", working_hours=("09:00", "17:00"), working_days=("sat", "sun"))
    assert rep.working_deadline(_utc(9, 16), H4) == _utc(10, 13)


def test_given_out_of_office_when_the_sla_runs_then_the_absence_does_not_stop_it():
    rep = RepConfig("r6", working_hours=("09:00", "17:00"), out_of_office=(("2026-01-12", "2026-01-16"),))
    assert rep.working_deadline(_utc(9, 16), H4) == _utc(12, 12)  # an absent rep's leads move on


def test_given_no_working_days_when_the_sla_runs_then_it_never_ends():
    rep = RepConfig("r7", working_hours=("09:00", "17:00"), working_days=())
    assert rep.working_deadline(_utc(9, 16), H4) is None
