"""A test module's own agents, so that no module borrows (or changes) the demo agents.

A module declares its crew at import time -- ids are derived from the module's name, so two
modules never share an agent -- and hires it into the centre it runs against once:

    CREW = Crew(__name__)
    ELDER = CREW.agent("elder", "bromma", {"elderly-care": 4, "switchboard": 3})

    @pytest.fixture(scope="module", autouse=True)
    def crew(kc):
        yield CREW.hire(kc)
        CREW.log_out(kc)

`hire` adds the agents (SIP credentials and web log-in: `PASSWORD`) to the organisation the way
an administrator does it, `PUT /api/config` with the current document plus the crew, and
returns once the service has reloaded the ACD and Asterisk's PJSIP (the API answers after).
"""
from __future__ import annotations

from typing import Any

# Every own agent's SIP password and web password (the demo agents' is another).
PASSWORD = "own-agent-pw"


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
        return agent_id

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
