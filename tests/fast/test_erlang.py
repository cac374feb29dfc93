"""Erlang C against textbook values.

The worked example used in most call-centre texts (e.g. Call Centre Helper's "Erlang C formula
– made simple"; Koole, "Call Center Mathematics", ch. 5): 100 calls per 30 minutes
(200/hour), AHT 180 s → 10 Erlangs, service-level target 20 s.
  agents  P(wait)  SL(20 s)  ASA
  11      68.2 %   39.0 %    122.8 s
  12      44.9 %   64.0 %     40.4 s
  13      28.5 %   79.6 %     17.1 s
  14      17.4 %   88.8 %      7.8 s
  15      10.1 %   94.1 %      3.7 s
so 14 agents reach 80 % in 20 s.
"""
from __future__ import annotations

import math

import pytest
from hypothesis import given, strategies as st

from reporting import erlang

TABLE = [  # agents, P(wait), SL, ASA
    (11, 0.682, 0.390, 122.8),
    (12, 0.449, 0.640, 40.4),
    (13, 0.285, 0.796, 17.1),
    (14, 0.174, 0.888, 7.8),
    (15, 0.101, 0.941, 3.7),
]


@pytest.mark.parametrize("agents,pw,sl,asa", TABLE)
def test_textbook_example(agents, pw, sl, asa):
    assert erlang.traffic(200, 180) == pytest.approx(10.0)
    assert erlang.erlang_c(agents, 10.0) == pytest.approx(pw, abs=0.0015)
    assert erlang.service_level(agents, 200, 180, 20) == pytest.approx(sl, abs=0.0015)
    assert erlang.average_speed_of_answer(agents, 200, 180) == pytest.approx(asa, abs=0.06)


def test_agents_needed_for_80_in_20():
    assert erlang.agents_needed(200, 180, 20, 0.8) == 14
    s = erlang.staffing(200, 180, 20, 0.8)
    assert (s.agents, round(s.erlangs, 3), round(s.occupancy, 3)) == (14, 10.0, round(10 / 14, 3))


def test_erlang_b_known_values():
    # Erlang B tables: A = 5 E with 10 lines blocks 1.84 %; A = 1 E with 1 line 50 %.
    assert erlang.erlang_b(10, 5.0) == pytest.approx(0.01838, abs=1e-4)
    assert erlang.erlang_b(1, 1.0) == pytest.approx(0.5)


def test_edges():
    assert erlang.agents_needed(0, 180) == 0
    assert erlang.erlang_c(5, 5.0) == 1.0                      # unstable queue: everyone waits
    assert erlang.service_level(5, 100, 180, 20) == 0.0
    assert math.isinf(erlang.average_speed_of_answer(5, 100, 180))
    assert erlang.agents_needed(1, 60, 20, 0.8) == 1
    with pytest.raises(ValueError):
        erlang.agents_needed(10, 100, 20, 1.0)
    with pytest.raises(ValueError):
        erlang.traffic(-1, 100)


@given(rate=st.floats(1, 2000), aht=st.floats(10, 1200), target=st.floats(0, 120),
       goal=st.floats(0.5, 0.95))
def test_agents_needed_is_the_fewest_that_reach_the_goal(rate, aht, target, goal):
    n = erlang.agents_needed(rate, aht, target, goal)
    assert n > erlang.traffic(rate, aht)
    assert erlang.service_level(n, rate, aht, target) >= goal
    if n - 1 > erlang.traffic(rate, aht):
        assert erlang.service_level(n - 1, rate, aht, target) < goal
