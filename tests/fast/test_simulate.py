"""`kc simulate`: the discrete-event simulation over the routing core (small runs)."""
import dataclasses

from acd import simulate
from acd.routing import RoutingPolicy
from kommuncentral.cli import main as kc_main
from kommuncentral.demo import DEMO_FILE


def small(**kw):
    return simulate.demo_scenario(DEMO_FILE, hours=kw.pop("hours", 2.0), seed=kw.pop("seed", 7), **kw)


def test_same_seed_same_figures_and_every_caller_accounted_for():
    a = {k: v.to_dict() for k, v in simulate.compare(small()).items()}
    b = {k: v.to_dict() for k, v in simulate.compare(small()).items()}
    assert a == b
    assert a != {k: v.to_dict() for k, v in simulate.compare(small(seed=8)).items()}
    for result in simulate.compare(small()).values():
        for fig in result.districts.values():
            assert fig.offered == fig.answered + fig.abandoned
            assert 0 <= fig.busy_seconds <= fig.staffed_seconds


def test_overflow_improves_service_level_when_districts_are_unbalanced():
    scenario = small(hours=4.0, rates={("bromma", "elderly-care"): 40.0,
                                       ("hasselby-vallingby", "elderly-care"): 5.0})
    results = simulate.compare(scenario)
    base, ovf = results["without_overflow"], results["with_overflow"]
    assert base.total.overflowed == 0
    assert ovf.districts["bromma"].overflowed > 0
    assert ovf.districts["bromma"].service_level > base.districts["bromma"].service_level + 0.1
    assert ovf.total.service_level > base.total.service_level
    assert ovf.total.abandoned < base.total.abandoned
    # the quiet district's agents work more, its own callers are still served
    assert ovf.districts["hasselby-vallingby"].occupancy > base.districts["hasselby-vallingby"].occupancy


def test_no_overflow_before_the_configured_wait():
    scenario = small(hours=3.0, overflow_after=120.0,
                     rates={("bromma", "elderly-care"): 40.0, ("hasselby-vallingby", "elderly-care"): 2.0})
    calls = simulate.generate_calls(scenario)
    policy = RoutingPolicy(scenario.queues, default_overflow=())
    seen = []
    original = simulate.Router.dispatch

    def spy(self, now):
        offers = original(self, now)
        seen.extend((now - c.enqueued_at, a.district != c.district) for c, a in offers)
        return offers

    simulate.Router.dispatch = spy
    try:
        simulate.run(scenario, policy, calls)
    finally:
        simulate.Router.dispatch = original
    overflowed_waits = [w for w, overflowed in seen if overflowed]
    assert overflowed_waits and min(overflowed_waits) >= 120.0


def test_confidential_matters_stay_with_cleared_agents():
    # demo agents are cleared only for their own district: social services never overflow
    scenario = small(hours=3.0, rates={("bromma", "social-services"): 30.0})
    result = simulate.compare(scenario)["with_overflow"]
    assert result.districts["bromma"].overflowed == 0
    assert result.districts["bromma"].abandoned > 0


def test_wrap_up_lowers_capacity():
    scenario = small(hours=3.0)
    wrapped = dataclasses.replace(scenario, queues=[dataclasses.replace(q, wrap_up_seconds=120.0)
                                                    for q in scenario.queues])
    plain = simulate.compare(scenario)["with_overflow"].total
    slow = simulate.compare(wrapped)["with_overflow"].total
    assert slow.abandoned > plain.abandoned


def test_kc_simulate_command(capsys):
    assert kc_main(["simulate", "--hours", "1", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "without overflow" in out and "with overflow" in out and "bromma" in out
    assert kc_main(["simulate", "--hours", "1", "--seed", "3"]) == 0
    assert capsys.readouterr().out == out
    assert kc_main(["simulate", "--rate", "nowhere:school=5"]) == 2
