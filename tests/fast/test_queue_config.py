"""Queue configuration per skill × district: the `queues` table on real SQLite."""
import pytest

from kc.clock import system_clock
from demo_template import load_demo
from kc.errors import InvalidInput, NotFound
from kc.queue_config import (OverflowStep, QueueConfig, delete_queue_config, get_queue_config,
                             list_queue_configs, save_queue_config)
from kc.store import connect


@pytest.fixture
def db(tmp_path):
    db = connect(tmp_path / "kc.db")
    load_demo(db, system_clock)
    return db


def test_demo_has_every_skill_and_district_with_overflow_after_30_s(db):
    configs = {c.name: c for c in list_queue_configs(db)}
    skills = [r["id"] for r in db["skills"].rows]
    assert set(configs) == {f"{s}@{d}" for s in skills for d in ("bromma", "hasselby-vallingby")}
    c = configs["elderly-care@bromma"]
    assert c.service_level_seconds == 30 and c.wrap_up_seconds == 0 and c.priority == 0
    assert c.overflow == (OverflowStep(30.0, ("hasselby-vallingby",)),)


def test_save_get_delete_round_trip(db):
    config = QueueConfig("school", "bromma", service_level_seconds=20, wrap_up_seconds=15,
                         overflow=((10, ["hasselby-vallingby"]), (60, ["*"])), priority=2)
    save_queue_config(db, config)
    assert get_queue_config(db, "school", "bromma") == config
    assert QueueConfig.from_dict(config.to_dict()) == config
    delete_queue_config(db, "school", "bromma")
    with pytest.raises(NotFound):
        get_queue_config(db, "school", "bromma")


@pytest.mark.parametrize("kwargs", [
    dict(service_level_seconds=0), dict(wrap_up_seconds=-1), dict(priority="high"),
    dict(overflow=((60, ["x"]), (30, ["y"]))), dict(overflow=((-1, ["x"]),)),
    dict(overflow=((30, []),)),
])
def test_invalid_configurations_are_refused(kwargs):
    with pytest.raises(InvalidInput):
        QueueConfig("school", "bromma", **kwargs)


def test_unknown_names_are_refused(db):
    for config in (QueueConfig("nope", "bromma"), QueueConfig("school", "nowhere"),
                   QueueConfig("school", "bromma", overflow=((30, ["nowhere"]),))):
        with pytest.raises(InvalidInput):
            save_queue_config(db, config)
    with pytest.raises(InvalidInput):
        QueueConfig.from_dict({"skill": "school"})
