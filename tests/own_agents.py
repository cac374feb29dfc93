"""A test module's own agents, so that no module borrows (or changes) the demo agents.

A module declares its crew at import time -- ids are derived from the module's name, so two
modules never share an agent -- and hires it into the centre it runs against:

    CREW = Crew(__name__)
    ELDER, SOCIAL = CREW.of("elder", "social")          # kinds of agent (KINDS)
    crew = CREW.fixture()          # module-wide: hired into `kc` first, logged out at the end

(or `CREW.hire(inst)` into a module's or a test's own centre). `hire` adds the agents (SIP
credentials and web log-in: `PASSWORD`) as an administrator does, `PUT /api/config` with the
current organisation plus the crew; the service has reloaded the ACD and Asterisk's PJSIP by the
time the API answers.
"""
from __future__ import annotations

from typing import Any

import pytest

# Every own agent's SIP password and web password.
PASSWORD = "own-agent-pw"
# The demo agents' (config/demo.yaml): only for a module not yet given its own agents.
DEMO_PASSWORD = "demo-agent"

_declared: set[str] = set()      # every own agent's id, whichever module declared it


def is_own(agent_id: str) -> bool:
    """Whether `agent_id` is an own agent (of any module's crew)."""
    return agent_id in _declared


def password_of(agent_id: str) -> str:
    """The password of an agent: an own agent's, else the demo's."""
    return PASSWORD if is_own(agent_id) else DEMO_PASSWORD

HV = "hasselby-vallingby"
SWITCHBOARD = {"switchboard": 3}
# The kinds of agent the tests need: district, skills with levels, districts cleared for
# (confidential matters). The same shapes as the demo's agents.
KINDS: dict[str, tuple[str, dict[str, int], tuple[str, ...]]] = {
    "elder": ("bromma", {"elderly-care": 4, **SWITCHBOARD}, ()),
    "elder-2": ("bromma", {"elderly-care": 3, **SWITCHBOARD}, ()),
    "school": ("bromma", {"school": 4, **SWITCHBOARD}, ()),
    "social": ("bromma", {"social-services": 4, **SWITCHBOARD}, ("bromma",)),
    "elder-hv": (HV, {"elderly-care": 4, **SWITCHBOARD}, ()),
    "school-hv": (HV, {"school": 4, **SWITCHBOARD}, ()),
    "social-hv": (HV, {"social-services": 4, **SWITCHBOARD}, (HV,)),
}


class Crew:
    def __init__(self, module: str):
        name = module.rsplit(".", 1)[-1].removeprefix("test_")
        self.prefix = name.replace("_", "-")
        self.agents: dict[str, dict[str, Any]] = {}

    def agent(self, label: str, district: str, skills: dict[str, int],
              cleared_for: tuple[str, ...] = ()) -> str:
        """Declare one agent; its id (`<module>-<label>`)."""
        agent_id = f"{self.prefix}-{label}"
        if agent_id in self.agents:
            raise ValueError(f"agent {agent_id} declared twice")
        self.agents[agent_id] = {"id": agent_id, "name": f"Testagent {label}",
                                 "district": district, "skills": dict(skills),
                                 "cleared_for": list(cleared_for), "password": PASSWORD}
        _declared.add(agent_id)
        return agent_id

    def of(self, *kinds: str) -> tuple[str, ...]:
        """One agent of each kind (KINDS), labelled by it; their ids."""
        return tuple(self.agent(kind, *KINDS[kind]) for kind in kinds)

    def hire(self, kc) -> None:
        """Put the crew into `kc`'s organisation (again: their declared state is restored)."""
        status, doc = kc.request("GET", "/api/config")
        assert status == 200, doc
        doc["agents"] = [a for a in doc["agents"] if a["id"] not in self.agents] \
            + list(self.agents.values())
        status, body = kc.request("PUT", "/api/config", doc)
        assert status == 200, body
        kc.wait_for(lambda: self.agents.keys() <= {a["id"] for a in
                                                   kc.request("GET", "/api/agents")[1]["agents"]},
                    20, f"{self.prefix} agents known to the service")

    def log_out(self, kc) -> None:
        """Every crew agent logged out (a module's end: none left ready for the next module)."""
        for agent_id in self.agents:
            kc.request("POST", f"/api/agents/{agent_id}/state", {"state": "logged_out"})

    def fixture(self, centre: str = "kc"):
        """A module-wide autouse fixture: the crew hired into the fixture `centre`, logged
        out when the module is done. Assign it to a module-level name."""
        @pytest.fixture(scope="module", autouse=True)
        def crew(request):
            kc = request.getfixturevalue(centre)
            self.hire(kc)
            yield
            self.log_out(kc)
        return crew
