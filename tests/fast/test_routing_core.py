"""The routing core and agent state rules: pure, so tested fast and by property."""
import dataclasses

import pytest
from hypothesis import given, strategies as st

from acd import agent_states
from acd.routing import AgentSnapshot, WaitingCall, assignments, pick_agent
from kc.domain import AgentState as S
from kc.errors import InvalidInput


def agent(id, district="bromma", skills=None, state=S.READY, registered=True, idle=0.0, cleared=()):
    return AgentSnapshot(id, district, skills or {"elderly-care": 3}, tuple(cleared), state,
                         registered, idle)


def call(cid, skill="elderly-care", district="bromma", at=0.0, priority=0, confidential=False):
    return WaitingCall(cid, skill, district, "sv", priority, confidential, at)


def test_called_district_first_then_proficiency_then_longest_idle():
    agents = [
        agent("hv-201", "hasselby-vallingby", {"elderly-care": 5}, idle=0),
        agent("bromma-102", skills={"elderly-care": 3}, idle=5),
        agent("bromma-101", skills={"elderly-care": 3}, idle=10),
        agent("bromma-103", skills={"elderly-care": 4}, idle=50),
    ]
    assert pick_agent(call(1), agents).id == "bromma-103"
    assert pick_agent(call(1), agents[:3]).id == "bromma-102"   # idle since 5: longest idle
    assert pick_agent(call(1), agents[:1]).id == "hv-201"       # nobody home: another district


def test_only_ready_registered_skilled_agents():
    agents = [agent("a", state=S.PAUSED), agent("b", registered=False),
              agent("c", skills={"school": 5}), agent("d", state=S.RINGING)]
    assert pick_agent(call(1), agents) is None


def test_confidential_only_to_cleared_agents():
    skills = {"social-services": 4}
    agents = [agent("hv-204", "hasselby-vallingby", skills, cleared=["hasselby-vallingby"]),
              agent("bromma-105", "bromma", skills)]
    assert pick_agent(call(1, "social-services", confidential=True), agents) is None
    cleared = agent("bromma-104", "bromma", skills, cleared=["bromma"], idle=100)
    assert pick_agent(call(1, "social-services", confidential=True), agents + [cleared]).id == "bromma-104"


def test_oldest_caller_first_within_priority():
    result = assignments([call(1, at=10), call(2, at=5), call(3, at=20, priority=1)],
                         [agent("x"), agent("y")])
    assert [c.contact_id for c, _ in result] == [3, 2]


agents_st = st.lists(st.builds(
    agent, id=st.text("abcdef", min_size=1, max_size=3),
    district=st.sampled_from(["bromma", "hv"]),
    skills=st.dictionaries(st.sampled_from(["elderly-care", "school"]), st.integers(1, 5), min_size=1),
    state=st.sampled_from(list(S)), registered=st.booleans(), idle=st.floats(0, 100),
    cleared=st.lists(st.sampled_from(["bromma", "hv"]), max_size=2)),
    max_size=12, unique_by=lambda a: a.id)
calls_st = st.lists(st.builds(
    call, cid=st.integers(1, 10**6), skill=st.sampled_from(["elderly-care", "school"]),
    district=st.sampled_from(["bromma", "hv"]), at=st.floats(0, 100), priority=st.integers(0, 2),
    confidential=st.booleans()), max_size=12, unique_by=lambda c: c.contact_id)


@given(calls_st, agents_st)
def test_assignments_are_eligible_and_never_double_book(calls, agents):
    result = assignments(calls, agents)
    assert len({a.id for _, a in result}) == len(result)
    assert len({c.contact_id for c, _ in result}) == len(result)
    for c, a in result:
        assert a.eligible_for(c)
    # no eligible pair was left idle: an unassigned call has no free eligible agent
    used = {a.id for _, a in result}
    assigned = {c.contact_id for c, _ in result}
    for c in calls:
        if c.contact_id not in assigned:
            assert not any(a.eligible_for(c) and a.id not in used for a in agents)


def test_agent_requests_and_pending_while_busy():
    assert agent_states.request(S.LOGGED_OUT, S.READY) == (S.READY, None)
    assert agent_states.request(S.ON_CALL, S.PAUSED) == (S.ON_CALL, S.PAUSED)
    assert agent_states.request(S.READY, S.READY) == (S.READY, None)
    with pytest.raises(InvalidInput):
        agent_states.request(S.LOGGED_OUT, S.PAUSED)
    with pytest.raises(InvalidInput):
        agent_states.request(S.READY, S.ON_CALL)
    assert agent_states.toggle_pause(S.READY) is S.PAUSED
    assert agent_states.toggle_pause(S.PAUSED) is S.READY


# ============================================================== policy with queue configuration
from hypothesis import settings as hyp_settings  # noqa: E402

from acd.routing import (Router, RoutingPolicy, agent_rank, call_order,  # noqa: E402
                         pick_call, reference_assignments)
from kc.queue_config import OverflowStep, QueueConfig  # noqa: E402

B, H, C = "bromma", "hasselby-vallingby", "c"


def demo_policy(after=30.0, skills=("elderly-care", "school", "social-services")):
    from acd.simulate import uniform_queues
    return RoutingPolicy(uniform_queues([B, H], skills, after))


def ag(id, district=B, skills=None, idle=0.0, cleared=(), langs=("sv",), state=S.READY):
    return AgentSnapshot(id, district, skills or {"elderly-care": 3}, tuple(cleared), state, True,
                         idle, tuple(langs))


def wc(cid, skill="elderly-care", district=B, at=0.0, priority=0, confidential=False, lang="sv"):
    return WaitingCall(cid, skill, district, lang, priority, confidential, at)


def test_overflow_only_after_its_time():
    policy = demo_policy()
    hv = ag("hv-201", H)
    c = wc(1, at=100.0)
    assert pick_agent(c, [hv], policy, now=129.999) is None
    assert pick_agent(c, [hv], policy, now=130.0) is hv
    r = Router(policy)
    r.upsert_agent(hv)
    assert r.on_call_arrived(c, 100.0) is None
    assert r.dispatch(110.0) == []
    assert r.next_wakeup(110.0) == 130.0
    offers = r.dispatch(130.0)
    assert [(o.call.contact_id, o.agent.id) for o in offers] == [(1, "hv-201")]
    assert r.next_wakeup(130.0) is None


def test_home_district_first_even_when_overflowed():
    policy = demo_policy()
    agents = [ag("hv-201", H, {"elderly-care": 5}, idle=0), ag("bromma-102", B, {"elderly-care": 1}, idle=50)]
    assert pick_agent(wc(1, at=0), agents, policy, now=1000).id == "bromma-102"


def test_earlier_overflow_steps_preferred_and_widening():
    q = QueueConfig("elderly-care", B, overflow=((30, [H]), (60, ["*"])))
    policy = RoutingPolicy([q])
    h, c = ag("h", H, {"elderly-care": 1}, idle=99), ag("c", C, {"elderly-care": 5}, idle=0)
    assert pick_agent(wc(1), [h, c], policy, now=29) is None
    assert pick_agent(wc(1), [h, c], policy, now=45) is h
    assert pick_agent(wc(1), [c], policy, now=45) is None
    assert pick_agent(wc(1), [h, c], policy, now=60) is h      # step 1 still preferred
    assert pick_agent(wc(1), [c], policy, now=60) is c
    # the router wakes the distributor exactly when a step is reached
    router = Router(policy)
    router.load([c], [wc(1)])
    assert router.dispatch(10) == [] and router.next_wakeup(10) == 30
    assert router.dispatch(30) == [] and router.next_wakeup(30) == 60
    assert [(o.call.contact_id, o.agent.id) for o in router.dispatch(60)] == [(1, "c")]
    assert router.next_wakeup(60) is None


def test_no_overflow_configured_means_never():
    policy = RoutingPolicy([QueueConfig("elderly-care", B)])
    assert pick_agent(wc(1), [ag("h", H)], policy, now=10**6) is None
    # queues without configuration: the default (everyone at once, home first)
    assert pick_agent(wc(1, "school"), [ag("h", H, {"school": 2})], policy, now=0).id == "h"


def test_confidential_never_to_uncleared_however_long_the_wait():
    policy = demo_policy()
    skills = {"social-services": 4}
    uncleared = [ag("b1", B, skills), ag("h1", H, skills, cleared=[H])]
    c = wc(1, "social-services", confidential=True)
    assert pick_agent(c, uncleared, policy, now=10**7) is None
    cleared_h = ag("h2", H, skills, cleared=[B])
    assert pick_agent(c, uncleared + [cleared_h], policy, now=29) is None
    assert pick_agent(c, uncleared + [cleared_h], policy, now=30) is cleared_h
    r = Router(policy)
    for a in uncleared:
        r.upsert_agent(a)
    r.add_call(c)
    assert r.dispatch(10**7) == []


def test_language_preferred_within_a_tier_only():
    policy = demo_policy()
    sv5 = ag("sv5", B, {"elderly-care": 5}, langs=("sv",))
    en3 = ag("en3", B, {"elderly-care": 3}, langs=("sv", "en"))
    en_h = ag("en-h", H, {"elderly-care": 5}, langs=("en",))
    english = wc(1, lang="en")
    assert pick_agent(english, [sv5, en3], policy, 0) is en3          # language before proficiency
    assert pick_agent(english, [sv5, en_h], policy, 100) is sv5       # district before language
    assert pick_agent(english, [en_h], policy, 100) is en_h
    assert pick_agent(wc(2, lang="sv"), [sv5, en3], policy, 0) is sv5


def test_free_agent_takes_longest_waiting_eligible_call_across_skills():
    policy = demo_policy()
    a = ag("b", B, {"elderly-care": 2, "school": 4})
    calls = [wc(1, "school", at=20), wc(2, "elderly-care", at=10), wc(3, "elderly-care", H, at=0),
             wc(4, "social-services", at=0, confidential=True)]
    assert pick_call(a, calls, policy, now=25).contact_id == 2     # H call not overflowed yet
    assert pick_call(a, calls, policy, now=30).contact_id == 3     # now it has
    assert pick_call(a, calls + [wc(5, "school", at=29, priority=1)], policy, now=30).contact_id == 5
    r = Router(policy)
    for c in calls:
        r.add_call(c)
    assert r.dispatch(25) == []
    assert r.on_agent_free(a, 25).contact_id == 2
    assert r.agent("b").state is S.RINGING and r.best_call_for("b", 25) is None   # no second offer
    assert r.dispatch(25) == []
    assert r.on_agent_free(dataclasses.replace(a, idle_since=26), 30).contact_id == 3


def test_ring_no_answer_puts_the_call_back_at_the_head():
    r = Router(demo_policy())
    r.upsert_agent(ag("x", idle=0))
    r.add_call(wc(1, at=0))
    r.add_call(wc(2, at=5))
    (offer,) = r.dispatch(6)
    assert offer.call.contact_id == 1
    r.add_call(offer.call)                                       # rona: back, original time
    r.upsert_agent(ag("x", state=S.PAUSED))
    r.upsert_agent(ag("y", idle=7))
    assert [o.call.contact_id for o in r.dispatch(8)] == [1]


def test_simultaneously_freed_agents_leave_the_call_to_the_home_agent():
    r = Router(demo_policy())
    r.add_call(wc(1, at=0))
    assert r.dispatch(100) == []
    r.upsert_agent(ag("h", H, idle=1))     # freed first (longest idle) but from the other district
    r.upsert_agent(ag("b", B, idle=2))
    assert [(o.call.contact_id, o.agent.id) for o in r.dispatch(100)] == [(1, "b")]


def test_default_assignments_keep_the_skeleton_behaviour():
    # old signature, no policy/clock: any district, home first
    result = assignments([wc(1)], [ag("h", H, {"elderly-care": 5})])
    assert [(c.contact_id, a.id) for c, a in result] == [(1, "h")]


# ---------------------------------------------------------------- property tests

DISTRICTS = ["a", "b", "c"]
SKILLS = ["s1", "s2", "s3"]


@st.composite
def policies(draw):
    queues = []
    for skill in SKILLS:
        for district in DISTRICTS:
            if draw(st.booleans()):
                afters = sorted(draw(st.lists(st.sampled_from([0.0, 10.0, 30.0, 60.0]), max_size=3)))
                steps = [OverflowStep(t, tuple(draw(st.lists(st.sampled_from(DISTRICTS + ["*"]),
                                                             min_size=1, max_size=2, unique=True))))
                         for t in afters]
                queues.append(QueueConfig(skill, district, overflow=tuple(steps),
                                          priority=draw(st.integers(0, 1))))
    default = draw(st.sampled_from([(), (OverflowStep(0.0, ("*",)),), (OverflowStep(20.0, ("*",)),)]))
    return RoutingPolicy(queues, default_overflow=default)


agent_profiles = st.builds(
    lambda i, d, sk, cl, langs, idle, state, reg: AgentSnapshot(
        f"ag{i}", d, sk, tuple(cl), state, reg, idle, tuple(langs)),
    st.integers(0, 15), st.sampled_from(DISTRICTS),
    st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 5), min_size=1),
    st.lists(st.sampled_from(DISTRICTS), max_size=2, unique=True),
    st.lists(st.sampled_from(["sv", "en", "fi"]), max_size=2, unique=True),
    st.sampled_from([0.0, 1.0, 2.0, 5.0]), st.sampled_from([S.READY, S.READY, S.PAUSED, S.ON_CALL]),
    st.booleans() | st.just(True))
waiting_calls = st.builds(
    WaitingCall, st.integers(1, 40), st.sampled_from(SKILLS), st.sampled_from(DISTRICTS),
    st.sampled_from(["sv", "en", "fi"]), st.integers(0, 2), st.booleans(),
    st.sampled_from([0.0, 0.0, 5.0, 10.0, 20.0, 45.0]))


@hyp_settings(deadline=None)   # examples: the profile's (tests/conftest.py)
@given(policies(), st.lists(waiting_calls, max_size=25, unique_by=lambda c: c.contact_id),
       st.lists(agent_profiles, max_size=12, unique_by=lambda a: a.id),
       st.sampled_from([0.0, 9.0, 15.0, 30.0, 50.0, 75.0, 1e6]))
def test_indexed_batch_equals_the_plain_policy(policy, calls, agents, now):
    expected = reference_assignments(calls, agents, policy, now)
    got = assignments(calls, agents, policy, now)
    assert [(c.contact_id, a.id) for c, a in got] == [(c.contact_id, a.id) for c, a in expected]


@hyp_settings(deadline=None)   # examples: the profile's (tests/conftest.py)
@given(policies(), st.lists(waiting_calls, max_size=25, unique_by=lambda c: c.contact_id),
       st.lists(agent_profiles, max_size=12, unique_by=lambda a: a.id),
       st.sampled_from([0.0, 9.0, 15.0, 30.0, 50.0, 75.0, 1e6]))
def test_indexed_single_decisions_equal_the_plain_policy(policy, calls, agents, now):
    r = Router(policy)
    for a in agents:
        r.upsert_agent(a)
    for c in calls:
        r.add_call(c)
    free = list(r.free_agents())
    for c in calls:
        assert r.best_agent_for(c, now) == pick_agent(c, free, policy, now)
    for a in agents:
        expected = pick_call(a, calls, policy, now) if a.free else None
        assert r.best_call_for(a.id, now) == expected


ops = st.lists(st.one_of(
    st.tuples(st.just("agent"), agent_profiles),
    st.tuples(st.just("call"), waiting_calls),
    st.tuples(st.just("hangup"), st.integers(1, 40)),
    st.tuples(st.just("tick"), st.sampled_from([0.5, 5.0, 10.0, 25.0])),
    st.tuples(st.just("free"), st.integers(0, 15)),        # the agent's call ended
    st.tuples(st.just("rona"), st.integers(0, 15)),        # no answer: call back, agent paused
), max_size=60)


@hyp_settings(deadline=None)   # examples: the profile's (tests/conftest.py)
@given(policies(), ops)
def test_incremental_router_keeps_every_promise(policy, script):
    """Random event sequences: no double booking; offers only to eligible agents (so never a
    confidential matter to an uncleared agent, never overflow before its time); FIFO within a
    queue and priority; and after each dispatch no free agent could take a waiting call."""
    r = Router(policy)
    now = 0.0
    ringing: dict[str, WaitingCall] = {}       # agent -> offered call
    for op, arg in script:
        if op == "tick":
            now += arg
        elif op == "agent":
            if arg.id in ringing:
                continue                       # the distributor holds ringing agents
            r.upsert_agent(dataclasses.replace(arg, idle_since=now))
        elif op == "call":
            if arg.contact_id in r or any(c.contact_id == arg.contact_id for c in ringing.values()):
                continue
            r.add_call(dataclasses.replace(arg, enqueued_at=max(0.0, now - arg.enqueued_at)))
        elif op == "hangup":
            r.remove_call(arg)
        elif op in ("free", "rona"):
            agent_id = f"ag{arg}"
            call = ringing.pop(agent_id, None)
            if call is None:
                continue
            snap = r.agent(agent_id)
            if op == "rona":
                r.add_call(call)
                r.upsert_agent(dataclasses.replace(snap, state=S.PAUSED))
            else:
                r.upsert_agent(dataclasses.replace(snap, state=S.READY, idle_since=now))
        wake = r.next_wakeup(now)
        if wake is not None and wake > now:
            assert wake == min(c.enqueued_at + s.after_seconds for c in r.waiting()
                               for s in policy.steps(c.skill, c.district)
                               if c.enqueued_at + s.after_seconds > now)
        before = {c.contact_id: c for c in r.waiting()}
        offers = r.dispatch(now)
        for call, agent in offers:
            assert agent.id not in ringing, "an agent was offered two calls"
            assert agent_rank(call, agent, policy, now) is not None
            if call.confidential:
                assert call.district in agent.cleared_for
            tier_after = policy.reach(call.skill, call.district, agent.district)
            assert call.enqueued_at + tier_after[1] <= now
            ringing[agent.id] = call
        assert len({c.contact_id for c, _ in offers}) == len(offers)
        waiting = list(r.waiting())
        for call, _ in offers:
            assert call.contact_id in before
            for other in waiting:   # FIFO within a queue and priority
                if (other.skill, other.district, other.confidential, other.priority) == \
                        (call.skill, call.district, call.confidential, call.priority):
                    assert call_order(other) > call_order(call)
        free = list(r.free_agents())
        for call in waiting:
            assert pick_agent(call, free, policy, now) is None


def test_next_wakeup_ignores_steps_already_passed():
    policy = demo_policy()
    # a free agent (who never matches: another skill) keeps the timer relevant; asked at 35,
    # call 1's step (30) has passed, call 2's (40) is next
    router = Router(policy)
    router.load([ag("h", H, {"school": 3})], [wc(1, at=0), wc(2, at=10)])
    assert router.dispatch(35) == [] and router.next_wakeup(35) == 40
    router.remove_call(2)
    assert router.next_wakeup(35) is None
    router.upsert_agent(ag("h", H, {"school": 3}, state=S.PAUSED))
    router.add_call(wc(3, at=20))
    assert router.next_wakeup(35) is None        # nobody free: no step can change anything
