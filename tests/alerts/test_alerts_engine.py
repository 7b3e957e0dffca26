"""Push/expect scenarios for the alerting core on virtual time, zero tolerance.

The first group follows Alertmanager's acceptance scenarios (test/with_api_v2/
acceptance: send, grouping, repeat, inhibit, silence, resolve); the second
replays the timelines of the Alertmanager bugs we must not repeat.
"""

from __future__ import annotations

from alerts_timeline import MONDAY, S, Timeline, webhook_config

from inferloop.alerts._engine import notification_id, step
from inferloop.alerts._model import Alert, AlertStatus
from inferloop.alerts._silences import expire_silence
from inferloop.alerts._state import AlertChanged, EngineState, SilenceChanged, Tick

FIRING, RESOLVED = AlertStatus.FIRING, AlertStatus.RESOLVED

BY_NAME = webhook_config(
    """
route:
  receiver: team
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 1h
"""
)


def test_first_notification_waits_group_wait_and_later_news_waits_group_interval() -> None:
    tl = Timeline(BY_NAME)
    tl.fire(0, "drift", feature="age")
    tl.fire(10, "drift", feature="income")
    tl.fire(40, "drift", feature="zip")
    tl.fire(100, "drift", feature="city")
    tl.advance(400)
    assert tl.summary() == [
        (30, FIRING, ("drift", "drift"), ()),
        (330, FIRING, ("drift", "drift", "drift", "drift"), ()),
    ]


def test_alerts_are_grouped_by_the_group_by_labels() -> None:
    tl = Timeline(BY_NAME)
    tl.fire(0, "drift", model="a")
    tl.fire(5, "latency", model="a")
    tl.fire(6, "drift", model="b")
    tl.advance(60)
    assert tl.summary() == [(30, FIRING, ("drift", "drift"), ()), (35, FIRING, ("latency",), ())]
    assert {s.notification.group_key for s in tl.sent} == {
        'root:{alertname="drift"}',
        'root:{alertname="latency"}',
    }
    assert tl.sent[0].notification.common_labels == {"alertname": "drift"}


def test_group_by_all_labels_makes_one_group_per_alert() -> None:
    config = webhook_config("route:\n  receiver: team\n  group_by: ['...']\n")
    tl = Timeline(config)
    tl.fire(0, "drift", model="a")
    tl.fire(1, "drift", model="b")
    tl.advance(60)
    assert [(s.at, s.notification.group_labels) for s in tl.sent] == [
        (30, {"alertname": "drift", "model": "a"}),
        (31, {"alertname": "drift", "model": "b"}),
    ]


def test_an_empty_group_by_puts_every_alert_of_a_route_in_one_group() -> None:
    tl = Timeline(webhook_config("route:\n  receiver: team\n"))
    tl.fire(0, "drift")
    tl.fire(1, "latency")
    tl.advance(31)
    assert tl.summary() == [(30, FIRING, ("drift", "latency"), ())]


def test_an_unchanged_firing_group_is_repeated_after_repeat_interval() -> None:
    tl = Timeline(BY_NAME)
    tl.fire(0, "drift")
    tl.advance(2 * 3600 + 60)
    assert [s.at for s in tl.sent] == [30, 3630, 7230]
    assert len({s.notification.id for s in tl.sent}) == 3


def test_a_resolve_is_sent_at_once_not_at_the_next_group_interval() -> None:
    # Alertmanager #1510: the resolve waited for the group_interval tick.
    tl = Timeline(BY_NAME)
    tl.fire(0, "drift")
    tl.resolve(60, "drift")
    tl.advance(4000)
    assert tl.summary() == [(30, FIRING, ("drift",), ()), (60, RESOLVED, (), ("drift",))]
    assert tl.state.groups == {} and tl.state.alerts == {}


def test_one_alert_resolving_in_a_group_is_sent_at_once_with_send_resolved() -> None:
    # Alertmanager #1660: partial resolves waited for group_interval too.
    tl = Timeline(BY_NAME)
    tl.fire(0, "drift", feature="age")
    tl.fire(1, "drift", feature="zip")
    tl.resolve(45, "drift", feature="age")
    tl.resolve(50, "drift", feature="zip")
    assert tl.summary() == [
        (30, FIRING, ("drift", "drift"), ()),
        (45, FIRING, ("drift",), ("drift",)),
        (50, RESOLVED, (), ("drift",)),
    ]


def test_without_send_resolved_resolves_are_not_sent_and_a_later_fire_waits_group_wait() -> None:
    tl = Timeline(webhook_config(BY_NAME.split("receivers:")[0], send_resolved="false"))
    tl.fire(0, "drift", feature="age")
    tl.fire(1, "drift", feature="zip")
    tl.resolve(45, "drift", feature="age")
    tl.resolve(50, "drift", feature="zip")
    tl.fire(100, "drift", feature="age")
    tl.advance(200)
    assert tl.summary() == [(30, FIRING, ("drift", "drift"), ()), (130, FIRING, ("drift",), ())]


def test_an_alert_that_fires_and_resolves_before_group_wait_is_still_reported() -> None:
    # Alertmanager #2398: fired and resolved between two ticks, nothing was sent.
    tl = Timeline(BY_NAME)
    tl.fire(0, "drift")
    tl.resolve(10, "drift")
    tl.advance(1000)
    assert tl.summary() == [(30, RESOLVED, (), ("drift",))]
    alert = tl.sent[0].notification.alerts[0]
    assert (alert.starts_at_ns, alert.ends_at_ns) == (0, 10 * S)


def test_an_episode_between_two_group_interval_ticks_is_reported_at_the_next_tick() -> None:
    tl = Timeline(BY_NAME)
    tl.fire(0, "drift", feature="age")
    tl.fire(40, "drift", feature="zip")
    tl.resolve(50, "drift", feature="zip")
    tl.advance(400)
    assert tl.summary() == [(30, FIRING, ("drift",), ()), (330, FIRING, ("drift",), ("drift",))]


def test_fired_resolved_fired_inside_one_interval_is_reported_as_such() -> None:
    tl = Timeline(BY_NAME)
    tl.fire(0, "drift")
    tl.resolve(60, "drift")
    tl.fire(70, "drift")
    tl.resolve(80, "drift")
    tl.fire(90, "drift")
    tl.advance(400)
    assert tl.summary() == [
        (30, FIRING, ("drift",), ()),
        (60, RESOLVED, (), ("drift",)),
        (100, FIRING, ("drift",), ("drift",)),
    ]
    # The group cleared at 60, so the re-fire at 70 starts a new group (group_wait again).
    episodes = [(a.starts_at_ns // S, a.ends_at_ns) for a in tl.sent[2].notification.alerts]
    assert sorted(episodes, key=lambda e: e[0]) == [(70, 80 * S), (90, None)]


def test_events_pushed_together_in_one_step_are_all_taken_into_account() -> None:
    tl = Timeline(BY_NAME)
    fired = Alert({"alertname": "drift"}, starts_at_ns=0)
    resolved = Alert({"alertname": "drift"}, starts_at_ns=0, ends_at_ns=5 * S)
    tl.push(5, AlertChanged(fired), AlertChanged(resolved))
    tl.advance(100)
    assert tl.summary() == [(35, RESOLVED, (), ("drift",))]


INHIBITED = webhook_config(
    """
route:
  receiver: team
  group_by: [alertname, model]
inhibit_rules:
  - source_matchers: ['alertname="no_traffic"']
    target_matchers: ['alertname=~".*drift"']
    equal: [model]
"""
)


def test_a_firing_source_inhibits_targets_with_equal_labels_until_it_resolves() -> None:
    tl = Timeline(INHIBITED)
    tl.fire(0, "no_traffic", model="fraud")
    tl.fire(1, "data_drift", model="fraud")
    tl.fire(2, "data_drift", model="churn")
    tl.resolve(100, "no_traffic", model="fraud")
    tl.advance(200)
    assert [(s.at, s.status, s.notification.group_labels) for s in tl.sent] == [
        (30, FIRING, {"alertname": "no_traffic", "model": "fraud"}),
        (32, FIRING, {"alertname": "data_drift", "model": "churn"}),
        (100, RESOLVED, {"alertname": "no_traffic", "model": "fraud"}),
        (130, FIRING, {"alertname": "data_drift", "model": "fraud"}),
    ]


def test_a_target_that_fires_and_clears_while_inhibited_is_never_sent() -> None:
    tl = Timeline(INHIBITED)
    tl.fire(0, "no_traffic", model="fraud")
    tl.fire(1, "data_drift", model="fraud")
    tl.resolve(50, "data_drift", model="fraud")
    tl.advance(1000)
    assert [s.firing for s in tl.sent] == [("no_traffic",)]


def test_a_silenced_alert_is_sent_after_group_wait_once_the_silence_ends() -> None:
    tl = Timeline(BY_NAME)
    tl.silence(0, 'alertname="drift"', until=600)
    tl.fire(10, "drift")
    tl.advance(700)
    assert tl.summary() == [(630, FIRING, ("drift",), ())]
    assert tl.state.silences == {}


def test_an_episode_entirely_inside_a_silence_is_never_sent() -> None:
    tl = Timeline(BY_NAME)
    tl.silence(0, 'alertname="drift"', until=600)
    tl.fire(10, "drift")
    tl.resolve(100, "drift")
    tl.advance(2000)
    assert tl.sent == []
    assert tl.state.alerts == {} and tl.state.groups == {}


def test_a_resolve_during_a_silence_is_sent_when_the_silence_ends() -> None:
    tl = Timeline(BY_NAME)
    tl.fire(0, "drift")
    tl.silence(40, 'alertname="drift"', until=900)
    tl.resolve(100, "drift")
    tl.advance(2000)
    assert tl.summary() == [(30, FIRING, ("drift",), ()), (900, RESOLVED, (), ("drift",))]


def test_expiring_a_silence_early_lets_the_alert_through() -> None:
    tl = Timeline(BY_NAME)
    silence = tl.silence(0, 'alertname="drift"', until=3600)
    tl.fire(10, "drift")
    tl.push(100, SilenceChanged(expire_silence(silence, 100 * S)))
    tl.advance(200)
    assert tl.summary() == [(130, FIRING, ("drift",), ())]


def test_a_silence_of_other_labels_does_not_stop_an_alert() -> None:
    tl = Timeline(BY_NAME)
    tl.silence(0, 'alertname="latency"', until=600)
    tl.fire(0, "drift")
    tl.advance(31)
    assert tl.summary() == [(30, FIRING, ("drift",), ())]


MUTED_ON_WEEKENDS = webhook_config(
    """
route:
  receiver: team
  group_by: [alertname]
  routes:
    - matchers: ['team="risk"']
      receiver: risk
      mute_time_intervals: [weekends]
time_intervals:
  - name: weekends
    time_intervals:
      - weekdays: ['saturday:sunday']
""",
    receivers=("team", "risk"),
)


def test_a_muted_route_sends_what_is_due_when_the_mute_ends() -> None:
    saturday = MONDAY - 2 * 86_400 * S
    tl = Timeline(MUTED_ON_WEEKENDS, start_ns=saturday)
    tl.fire(0, "drift", team="risk")
    tl.fire(0, "latency", team="ml")
    tl.advance(2 * 86_400 + 100)
    assert tl.summary("risk") == [(2 * 86_400, FIRING, ("drift",), ())]
    assert tl.summary("team")[0] == (30, FIRING, ("latency",), ())


def test_an_episode_entirely_inside_a_mute_is_never_sent() -> None:
    saturday = MONDAY - 2 * 86_400 * S
    tl = Timeline(MUTED_ON_WEEKENDS, start_ns=saturday)
    tl.fire(0, "drift", team="risk")
    tl.resolve(3600, "drift", team="risk")
    tl.advance(3 * 86_400)
    assert tl.sent == []


def test_a_resolve_during_a_mute_is_sent_when_the_mute_ends() -> None:
    friday_evening = MONDAY - 2 * 86_400 * S - 60 * S
    tl = Timeline(MUTED_ON_WEEKENDS, start_ns=friday_evening)
    tl.fire(0, "drift", team="risk")
    tl.advance(1)
    tl.resolve(3600, "drift", team="risk")
    tl.advance(3 * 86_400)
    assert tl.summary() == [
        (30, FIRING, ("drift",), ()),
        (2 * 86_400 + 60, RESOLVED, (), ("drift",)),
    ]


def test_continue_sends_to_the_matching_route_and_to_the_next_siblings() -> None:
    config = webhook_config(
        """
route:
  receiver: team
  group_by: [alertname]
  routes:
    - matchers: ['severity="critical"']
      receiver: pager
      group_wait: 0s
      continue: true
    - matchers: ['model=~"fraud|churn"']
      receiver: risk
""",
        receivers=("team", "pager", "risk"),
    )
    tl = Timeline(config)
    tl.fire(0, "latency", severity="critical", model="fraud")
    tl.fire(0, "drift", severity="warning", model="ads")
    tl.advance(60)
    assert sorted((s.at, s.receiver, s.firing) for s in tl.sent) == [
        (0, "pager", ("latency",)),
        (30, "risk", ("latency",)),
        (30, "team", ("drift",)),
    ]


def test_notification_ids_are_the_same_when_a_step_is_recomputed_from_saved_state() -> None:
    config = Timeline(BY_NAME).config
    state = step(config, EngineState(), AlertChanged(Alert({"alertname": "a"})), 0).state
    saved = state.to_dict()
    first = step(config, EngineState.from_dict(saved), Tick(), 30 * S).notifications
    again = step(config, EngineState.from_dict(saved), Tick(), 30 * S).notifications
    assert [n.id for n in first] == [n.id for n in again] and len(first) == 1
    assert first[0].id == notification_id("team", 'root:{alertname="a"}', 0, 1)


def test_a_group_that_comes_back_after_clearing_does_not_reuse_notification_ids() -> None:
    tl = Timeline(BY_NAME)
    tl.fire(0, "drift")
    tl.resolve(60, "drift")
    tl.advance(4000)
    tl.fire(5000, "drift")
    tl.advance(6000)
    assert [s.at for s in tl.sent] == [30, 60, 5030]
    assert len({s.notification.id for s in tl.sent}) == 3


def test_the_next_wakeup_is_the_earliest_due_flush() -> None:
    config = Timeline(BY_NAME).config
    result = step(config, EngineState(), AlertChanged(Alert({"alertname": "a"})), 7 * S)
    assert result.notifications == [] and result.next_wakeup_ns == 37 * S
    early = step(config, result.state, Tick(), 20 * S)
    assert early.notifications == [] and early.next_wakeup_ns == 37 * S
