"""The cluster as data (no PBX): the `nodes` section checked and kept through export and import,
the front door's dispatcher list (home node first), and the nodes' channel names."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from acd.cluster import node_of_uniqueid, qualify, split
from city import document, nodes as city_nodes, store as city_store
from kc import strict_yaml
from kc.settings import PROJECT_ROOT
from kc.store import Store
from kommuncentral.demo import DEMO_FILE, load_config, read
from pbx.kamailio import Destination, FrontDoor, render_front_door

NODES_FILE = PROJECT_ROOT / "config" / "nodes-2.yaml"
AT = "2026-03-02T10:00:00.000Z"


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "kc.db")
    s.run_sync(load_config, lambda: datetime(2026, 3, 2, 9, tzinfo=timezone.utc), DEMO_FILE,
               False, "test", NODES_FILE)
    yield s
    s.close()


def test_nodes_survive_export_and_import(store):
    nodes = store.run_sync(city_nodes.read)
    assert [(n.id, n.sip_port, n.ami_port, n.districts) for n in nodes] == [
        ("north", 5062, 5038, ("bromma",)), ("west", 5064, 5039, ("hasselby-vallingby",))]
    exported = strict_yaml.dump(document.public(store.run_sync(city_store.export)))
    target = document.validated(strict_yaml.load(exported))
    assert store.run_sync(city_store.apply, target, "t", AT) == []
    target["nodes"][1]["sip"] = "127.0.0.1:5066"
    assert store.run_sync(city_store.apply, target, "t", AT) == [("nodes", "west", "change")]
    assert store.run_sync(city_nodes.read)[1].sip_port == 5066


def test_every_problem_of_the_nodes_is_named():
    data = read(DEMO_FILE, NODES_FILE)
    data["nodes"] += [{"id": "North", "sip": "127.0.0.1:5062", "ami": "localhost:5038"},
                      {"id": "east", "sip": "127.0.0.1:5064", "ami": "127.0.0.1:99999",
                       "districts": ["bromma", "atlantis"], "colour": "red"}]
    _, problems = document.normalise(data)
    text = "\n".join(problems)
    assert "nodes[2] (North): id: a lower-case letter" in text
    assert "nodes[3] (east): ami '127.0.0.1:99999'" in text
    assert "nodes[3] (east): no district 'atlantis'" in text
    assert "nodes[3] (east): district 'bromma' is homed by north too" in text
    assert "nodes[3] (east): sip port 5064 is also west's" in text
    assert "unknown key 'colour'" in text


def test_a_district_no_node_names_is_homed_by_the_first():
    nodes = city_nodes.parse(read(DEMO_FILE, NODES_FILE)["nodes"])
    assert city_nodes.node_of_district(nodes, "hasselby-vallingby") == "west"
    assert city_nodes.node_of_district(nodes, "kista") == "north"
    assert city_nodes.node_of_district([], "bromma") is None


def test_front_door_sends_each_district_to_its_home_node_first(tmp_path):
    north, west = Destination("north", "127.0.0.1", 5062), Destination("west", "127.0.0.1", 5064)
    door = FrontDoor(tmp_path, "127.0.0.1", 5060, (("bromma", ("0850810000",), (north, west)),
                                                   ("hv", ("0850820000", "0850820001"), (west, north))))
    cfg = render_front_door(door).read_text()
    listing = [line.split() for line in door.list_path.read_text().splitlines()
               if not line.startswith("#")]
    assert listing == [["1", "sip:127.0.0.1:5062", "8", "100", "node=north"],
                       ["1", "sip:127.0.0.1:5064", "8", "99", "node=west"],
                       ["2", "sip:127.0.0.1:5064", "8", "100", "node=west"],
                       ["2", "sip:127.0.0.1:5062", "8", "99", "node=north"]]
    assert 'if ($rU == "0850820001") { $var(set) = 2; }' in cfg
    assert "listen=udp:127.0.0.1:5060" in cfg and "/etc/" not in cfg


def test_channels_and_uniqueids_say_their_node():
    assert split(qualify("north", "PJSIP/residents-00000001")) == ("north", "PJSIP/residents-00000001")
    assert split("PJSIP/residents-00000001") == (None, "PJSIP/residents-00000001")
    assert node_of_uniqueid("west-1712345678.42") == "west"
    assert node_of_uniqueid("1712345678.42") is None and node_of_uniqueid("kc-abc-1") is None
