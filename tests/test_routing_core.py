"""The routing core and agent state rules: pure, so tested fast and by property."""
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
