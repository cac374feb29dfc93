"""The menu engine: demo behaviour, validation, and properties over random menus."""

from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agi.menu import (
    DIGITS,
    Collect,
    Event,
    Hangup,
    Menu,
    MenuError,
    MenuSession,
    Problem,
    Queue,
    SessionError,
    Speech,
    Transfer,
    validate,
)
from demo_facts import DEMO_SKILLS, demo_menu

SKILLS = set(DEMO_SKILLS)


def demo() -> Menu:
    return Menu.from_dict(demo_menu("Bromma"))


def tree() -> dict:
    """A small two-level menu exercising submenu, back, repeat, info and e-service."""
    return {
        "languages": ["sv", "en"],
        "root": "main",
        "nodes": {
            "main": {
                "prompt": {"sv": "Huvudmeny", "en": "Main menu"},
                "on_fail": {"action": "queue", "skill": "switchboard"},
                "options": {
                    "1": {"action": "submenu", "node": "school"},
                    "4": {"action": "info", "prompt": {"sv": "Öppet 8-16", "en": "Open 8-16"}},
                    "5": {"action": "info", "prompt": {"sv": "Hej då", "en": "Bye"}, "then": "hangup"},
                    "6": {
                        "action": "eservice",
                        "name": "bygglov",
                        "address": {"sv": "stockholm.se/bygglov", "en": "stockholm.se/permits"},
                        "then": "hangup",
                    },
                    "7": {"action": "transfer", "number": "+46850800000"},
                    "*": {"action": "repeat"},
                    "0": {"action": "queue", "skill": "switchboard", "priority": 2},
                },
            },
            "school": {
                "prompt": {"sv": "Skola", "en": "School"},
                "timeout": 3,
                "retries": 2,
                "on_fail": {"action": "transfer", "number": "switchboard"},
                "options": [
                    {"digit": 1, "action": "queue", "skill": "school"},
                    {"digit": "2", "action": "eservice", "name": "skolval",
                     "address": {"sv": "skolval", "en": "school choice"}},
                    {"digit": "#", "action": "back"},
                    {"digit": "9", "action": "language", "language": "en"},
                ],
            },
        },
    }


def run(session: MenuSession, inputs: list) -> list:
    """Feed digits (str) and timeouts (None); return the steps."""
    steps = [session.start()]
    for item in inputs:
        steps.append(session.timeout() if item is None else session.press(item))
    return steps


# -- demo menu ---------------------------------------------------------------


def test_demo_menu_is_valid_and_mentions_district():
    d = demo_menu("Bromma")
    assert validate(Menu.from_dict(d), SKILLS) == []
    assert "Bromma" in d["nodes"]["main"]["prompt"]["sv"]
    assert "Bromma" in d["nodes"]["main"]["prompt"]["en"]
    assert "äldreomsorg" in d["nodes"]["main"]["prompt"]["sv"]


def test_start_collects_main_in_swedish():
    step = MenuSession(demo()).start()
    assert step.say == ()
    assert isinstance(step.then, Collect)
    assert step.then.node_id == "main" and step.then.timeout == 5.0
    assert step.then.prompt.language == "sv" and step.then.prompt.interruptible
    assert "Välkommen till Bromma" in step.then.prompt.text


def test_press_1_queues_elderly_care():
    s = MenuSession(demo())
    *_, last = run(s, ["1"])
    assert last.then == Queue("elderly-care", 0)
    assert s.path == ["1"] and s.finished and s.outcome == Queue("elderly-care", 0)
    assert ("digit", "1") in s.events


def test_9_then_2_switches_to_english_and_queues_school():
    s = MenuSession(demo())
    _, english, last = run(s, ["9", "2"])
    assert english.then.prompt.language == "en" and "Welcome" in english.then.prompt.text
    assert last.then == Queue("school", 0)
    assert s.language == "en" and s.path == ["9", "2"]
    assert ("language", "en") in s.events


def test_9_twice_toggles_back_to_swedish():
    s = MenuSession(demo())
    _, _, back = run(s, ["9", "9"])
    assert back.then.prompt.language == "sv" and s.language == "sv"


def test_three_unknown_digits_queue_switchboard():
    s = MenuSession(demo())
    steps = run(s, ["7", "x", "##"])
    assert [st.final for st in steps] == [False, False, False, True]
    assert steps[-1].then == Queue("switchboard", 0)
    assert s.path == ["7", "x", "##"]
    assert [e for e in s.events if e.kind == "unknown"] == [("unknown", "7"), ("unknown", "x"), ("unknown", "##")]
    assert ("fail", "main") in s.events


def test_three_timeouts_queue_switchboard():
    s = MenuSession(demo())
    steps = run(s, [None, None, None])
    assert steps[-1].then == Queue("switchboard", 0)
    assert s.events.count(Event("timeout", "main")) == 3 and s.path == []


def test_a_silent_caller_given_up_on_goes_to_the_default_action_at_once():
    s = MenuSession(demo())
    s.start()
    assert isinstance(s.timeout().then, Collect)        # the node allows three tries
    step = s.give_up()                                  # the centre waits no longer
    assert step.then == Queue("switchboard", 0) and s.finished
    assert s.events.count(Event("timeout", "main")) == 2 and ("fail", "main") in s.events


def test_valid_choice_resets_failure_count():
    s = MenuSession(Menu.from_dict(tree()))
    steps = run(s, [None, None, "*", None, None])
    assert not any(step.final for step in steps)


def test_calls_after_final_raise_clear_error():
    s = MenuSession(demo())
    run(s, ["1"])
    with pytest.raises(SessionError, match="finished"):
        s.press("1")
    with pytest.raises(SessionError, match="finished"):
        s.timeout()


def test_press_before_start_raises():
    with pytest.raises(SessionError, match="start"):
        MenuSession(demo()).press("1")


def test_unknown_preferred_language_falls_back_to_default():
    assert MenuSession(demo(), language="fi").language == "sv"
    assert MenuSession(demo(), language="en").start().then.prompt.language == "en"


# -- submenus, back, repeat, info, e-service ------------------------------------


def test_submenu_then_back_returns_to_parent():
    s = MenuSession(Menu.from_dict(tree()))
    _, sub, back = run(s, ["1", "#"])
    assert sub.then.node_id == "school" and sub.then.timeout == 3.0
    assert back.then.node_id == "main" and s.node_id == "main"
    assert [e for e in s.events if e.kind == "menu"] == [("menu", "main"), ("menu", "school"), ("menu", "main")]


def test_back_at_root_stays_at_root():
    d = tree()
    d["nodes"]["main"]["options"]["#"] = {"action": "back"}
    s = MenuSession(Menu.from_dict(d))
    _, step = run(s, ["#"])
    assert step.then.node_id == "main" and not step.final


def test_repeat_replays_same_collect_without_failure():
    s = MenuSession(Menu.from_dict(tree()))
    steps = run(s, ["*", "*", "*", "*"])
    assert all(step.then == steps[0].then for step in steps)
    assert not any(e.kind in ("fail", "unknown") for e in s.events)


def test_info_return_says_text_then_reprompts():
    s = MenuSession(Menu.from_dict(tree()))
    _, step = run(s, ["4"])
    assert step.say == (Speech("Öppet 8-16", "sv", None, True),)
    assert step.then.node_id == "main"
    assert ("info", "main/4") in s.events


def test_info_hangup():
    s = MenuSession(Menu.from_dict(tree()))
    _, step = run(s, ["5"])
    assert step.say[0].text == "Hej då" and not step.say[0].interruptible
    assert step.then == Hangup("info") and s.finished


def test_eservice_hangup_and_return_are_recorded():
    s = MenuSession(Menu.from_dict(tree()))
    _, step = run(s, ["6"])
    assert step.say[0].text == "stockholm.se/bygglov" and step.then == Hangup("eservice")
    assert ("eservice", "bygglov") in s.events

    s = MenuSession(Menu.from_dict(tree()), language="en")
    _, _, step = run(s, ["1", "2"])
    assert step.say[0] == Speech("school choice", "en", None, True)
    assert step.then.node_id == "school" and ("eservice", "skolval") in s.events


def test_transfer_and_priority():
    assert run(MenuSession(Menu.from_dict(tree())), ["7"])[-1].then == Transfer("+46850800000")
    assert run(MenuSession(Menu.from_dict(tree())), ["0"])[-1].then == Queue("switchboard", 2)


def test_submenu_failures_use_its_own_retries_and_on_fail():
    s = MenuSession(Menu.from_dict(tree()))
    steps = run(s, ["1", None, "5"])
    assert steps[-1].then == Transfer("switchboard")
    assert ("fail", "school") in s.events


def test_language_option_missing_from_menu_counts_as_unknown():
    d = tree()
    d["languages"] = ["sv"]
    for node in d["nodes"].values():
        node["prompt"].pop("en")
    s = MenuSession(Menu.from_dict(d))
    _, _, step = run(s, ["1", "9"])
    assert step.then.prompt.language == "sv"
    assert ("unknown", "9") in s.events and ("language", "en") not in s.events


def test_recorded_audio_is_offered_with_text():
    d = demo_menu("Bromma")
    d["nodes"]["main"]["audio"] = {"sv": "recordings/bromma-main-sv"}
    step = MenuSession(Menu.from_dict(d)).start()
    assert step.then.prompt.audio == "recordings/bromma-main-sv"


def test_max_steps_cap_uses_on_fail_or_switchboard():
    s = MenuSession(demo(), max_steps=4)
    steps = run(s, ["9", "9", "9"])
    assert steps[-1].then == Queue("switchboard", 0) and ("cap", "main") in s.events

    d = demo_menu("Bromma")
    d["nodes"]["main"]["on_fail"] = {"action": "info", "prompt": {"sv": "x", "en": "y"}, "then": "hangup"}
    s = MenuSession(Menu.from_dict(d), max_steps=2)
    assert run(s, ["9"])[-1].then == Transfer("switchboard")


# -- parsing and round trip ----------------------------------------------------


def test_round_trip():
    for d in (demo_menu("Bromma"), tree()):
        m = Menu.from_dict(d)
        assert Menu.from_dict(m.to_dict()) == m
        assert m.to_dict() == Menu.from_dict(m.to_dict()).to_dict()


def test_round_trip_keeps_duplicates_as_list():
    d = tree()
    d["nodes"]["school"]["options"].append({"digit": "1", "action": "back"})
    m = Menu.from_dict(d)
    assert isinstance(m.to_dict()["nodes"]["school"]["options"], list)
    assert Menu.from_dict(m.to_dict()) == m


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["nodes"]["school"].update(timeout="soon"), "node 'school'.*timeout"),
        (lambda d: d["nodes"]["school"].update(colour="red"), "node 'school'.*colour"),
        (lambda d: d["nodes"]["main"]["options"].update({"3": {"action": "dance"}}), "node 'main'.*dance"),
        (lambda d: d["nodes"]["main"]["options"].update({"3": {"action": "queue"}}), "node 'main'.*skill"),
        (lambda d: d["nodes"]["main"]["options"]["4"].update(then="later"), "node 'main'.*then"),
        (lambda d: d["nodes"]["main"].pop("prompt"), "node 'main'.*prompt"),
        (lambda d: d["nodes"]["main"].update(prompt={"sv": 3}), "node 'main'"),
        (lambda d: d["nodes"].update(x=[]), "node 'x'"),
        (lambda d: d.update(languages=[]), "languages"),
        (lambda d: d["nodes"]["school"]["options"].append({"action": "back"}), "node 'school'.*digit"),
        (lambda d: d["nodes"]["main"].update(retries=True), "node 'main'.*retries"),
    ],
)
def test_malformed_input_names_the_node(mutate, message):
    d = tree()
    mutate(d)
    with pytest.raises(MenuError, match=message):
        Menu.from_dict(d)


def test_yaml_integer_digit_keys_are_accepted():
    d = tree()
    d["nodes"]["main"]["options"] = {1: {"action": "submenu", "node": "school"}}
    assert Menu.from_dict(d).nodes["main"].options[0].digit == "1"


# -- validation -----------------------------------------------------------------


def problems_for(mutate) -> list[Problem]:
    d = copy.deepcopy(tree())
    mutate(d)
    return validate(Menu.from_dict(d), SKILLS)


def test_valid_tree_has_no_problems():
    assert validate(Menu.from_dict(tree()), SKILLS) == []


@pytest.mark.parametrize(
    "mutate, node, fragment",
    [
        (lambda d: d["nodes"]["main"]["options"].update({"2": {"action": "submenu", "node": "nope"}}),
         "main", "missing node 'nope'"),
        (lambda d: d["nodes"].update(orphan={"prompt": {"sv": "a", "en": "b"},
                                             "options": {"1": {"action": "queue", "skill": "school"}}}),
         "orphan", "no path from the root"),
        (lambda d: d["nodes"]["school"]["options"].append({"digit": "1", "action": "back"}),
         "school", "duplicate digit '1'"),
        (lambda d: d["nodes"]["school"]["prompt"].pop("en"), "school", "prompt has no text for language 'en'"),
        (lambda d: d["nodes"]["main"]["options"]["4"]["prompt"].pop("sv"), "main", "info has no text for language 'sv'"),
        (lambda d: d["nodes"]["main"]["options"]["6"]["address"].update(en=" "), "main",
         "e-service address has no text for language 'en'"),
        (lambda d: d["nodes"]["school"]["options"][0].update(skill="plumbing"), "school", "unknown skill 'plumbing'"),
        (lambda d: d["nodes"]["school"].update(options={"#": {"action": "language", "language": "en"}}),
         "school", "no way out"),
        (lambda d: d["nodes"]["main"]["options"].update({"12": {"action": "repeat"}}), "main", "invalid digit '12'"),
        (lambda d: d["nodes"]["main"]["options"].update({"a": {"action": "repeat"}}), "main", "invalid digit 'a'"),
        (lambda d: d["nodes"]["main"].update(timeout=0), "main", "timeout 0 out of range"),
        (lambda d: d["nodes"]["main"].update(timeout=600), "main", "timeout 600 out of range"),
        (lambda d: d["nodes"]["main"].update(retries=0), "main", "retries 0 out of range"),
        (lambda d: d["nodes"]["main"].update(retries=99), "main", "retries 99 out of range"),
        (lambda d: d["nodes"]["main"]["options"]["7"].update(number="--help"), "main", "invalid number"),
        (lambda d: d["nodes"]["school"]["options"][3].update(language="fi"), "school", "language 'fi' the menu lacks"),
        (lambda d: d["nodes"]["main"].update(on_fail={"action": "repeat"}), "main", "on_fail must"),
        (lambda d: (d["nodes"]["main"].update(on_fail={"action": "submenu", "node": "school"}),
                    d["nodes"]["school"].update(on_fail={"action": "submenu", "node": "main"})),
         "main", "on_fail loops"),
        (lambda d: d["nodes"]["main"]["options"].update({"2": {"action": "submenu", "node": "main"}}),
         "main", "its own node"),
        (lambda d: d["nodes"]["main"]["options"]["0"].update(priority=-1), "main", "priority -1 out of range"),
    ],
)
def test_each_problem_is_named(mutate, node, fragment):
    problems = problems_for(mutate)
    assert any(p.node_id == node and fragment in p.message for p in problems), problems


def test_missing_root_is_a_menu_wide_problem():
    d = tree()
    d["root"] = "start"
    problems = validate(Menu.from_dict(d), SKILLS)
    assert Problem(None, "root node 'start' does not exist") in problems
    with pytest.raises(MenuError, match="start"):
        MenuSession(Menu.from_dict(d))


def test_skill_check_skipped_without_known_skills():
    d = tree()
    d["nodes"]["school"]["options"][0]["skill"] = "plumbing"
    assert validate(Menu.from_dict(d)) == []


# -- properties over random valid menus ------------------------------------------

LANGS = ["sv", "en", "fi", "ar"]
SKILL_LIST = sorted(SKILLS)


@st.composite
def valid_menus(draw) -> dict:
    """Random trees (plus cross links) that validate() accepts by construction."""
    langs = draw(st.lists(st.sampled_from(LANGS), min_size=1, max_size=3, unique=True))
    n = draw(st.integers(1, 6))
    ids = [f"n{i}" for i in range(n)]
    parents = [None] + [draw(st.integers(0, i - 1)) for i in range(1, n)]

    def texts(label: str) -> dict:
        return {lang: f"{label} {lang}" for lang in langs}

    def then() -> str:
        return draw(st.sampled_from(["return", "hangup"]))

    nodes = {}
    for i, node_id in enumerate(ids):
        free = list(DIGITS)
        options = []

        def take() -> str:
            d = draw(st.sampled_from(free))
            free.remove(d)
            return d

        for child in (j for j in range(n) if parents[j] == i):
            options.append((take(), {"action": "submenu", "node": ids[child]}))
        options.append((take(), {"action": "queue", "skill": draw(st.sampled_from(SKILL_LIST)),
                                 "priority": draw(st.integers(0, 10))}))
        extra = draw(st.lists(st.sampled_from(
            ["info", "eservice", "transfer", "language", "repeat", "back", "link", "queue"]), max_size=6))
        for kind in extra[: len(free)]:
            if kind == "info":
                action = {"action": "info", "prompt": texts("info"), "then": then()}
            elif kind == "eservice":
                action = {"action": "eservice", "name": "e", "address": texts("addr"), "then": then()}
            elif kind == "transfer":
                action = {"action": "transfer", "number": draw(st.sampled_from(["switchboard", "+4681234567"]))}
            elif kind == "language":
                action = {"action": "language", "language": draw(st.sampled_from(langs))}
            elif kind == "link":
                others = [x for x in ids if x != node_id]
                if not others:
                    continue
                action = {"action": "submenu", "node": draw(st.sampled_from(others))}
            elif kind == "queue":
                action = {"action": "queue", "skill": draw(st.sampled_from(SKILL_LIST))}
            else:
                action = {"action": kind}
            options.append((take(), action))
        later = ids[i + 1:]
        on_fail = draw(st.sampled_from(["queue", "transfer", "info", "submenu"] if later else ["queue", "transfer", "info"]))
        if on_fail == "queue":
            fail = {"action": "queue", "skill": "switchboard"}
        elif on_fail == "transfer":
            fail = {"action": "transfer", "number": "switchboard"}
        elif on_fail == "info":
            fail = {"action": "info", "prompt": texts("bye"), "then": "hangup"}
        else:  # only forward, so silence cannot loop
            fail = {"action": "submenu", "node": draw(st.sampled_from(later))}
        as_list = draw(st.booleans())
        nodes[node_id] = {
            "prompt": texts(node_id),
            "timeout": draw(st.integers(1, 60)),
            "retries": draw(st.integers(1, 4)),
            "on_fail": fail,
            "options": [{"digit": d, **a} for d, a in options] if as_list else dict(options),
        }
    return {"languages": langs, "root": "n0", "nodes": nodes}


TIMEOUT = object()


def inputs_for(d: dict):
    """Mostly digits the menu uses (to walk deep), some other digits, silence and junk."""
    used = sorted({str(o["digit"]) if isinstance(o, dict) else str(o)
                   for n in d["nodes"].values() for o in n["options"]})
    known, any_digit = st.sampled_from(used), st.sampled_from(list(DIGITS))
    item = st.one_of(known, known, known, any_digit, st.just(TIMEOUT), st.text(max_size=3))
    return st.lists(item, min_size=1, max_size=80)


# How many examples: the Hypothesis profile's (tests/conftest.py).
PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(valid_menus())
def test_generated_menus_validate_and_round_trip(d):
    menu = Menu.from_dict(d)
    assert validate(menu, SKILLS) == []
    assert Menu.from_dict(menu.to_dict()) == menu


@PROPERTY
@given(valid_menus(), st.data(), st.integers(1, 60), st.sampled_from([None, *LANGS]))
def test_any_input_reaches_a_final_step_within_max_steps(d, data, max_steps, lang):
    feed = data.draw(inputs_for(d))
    menu = Menu.from_dict(d)
    s = MenuSession(menu, language=lang, max_steps=max_steps)
    step = s.start()
    steps, pressed = 1, []
    for item in feed:
        if step.final:
            break
        if item is TIMEOUT:
            step = s.timeout()
        else:
            pressed.append(item)
            step = s.press(item)
        steps += 1
    while not step.final:  # the caller goes silent
        step = s.timeout()
        steps += 1
    assert steps <= max_steps
    assert s.steps == steps and s.finished and s.outcome == step.then
    assert s.path == pressed
    assert isinstance(step.then, (Queue, Transfer, Hangup))
    assert s.language in menu.languages
    assert all(sp.language in menu.languages and sp.text for sp in step.say)
    with pytest.raises(SessionError):
        s.timeout()


@PROPERTY
@given(valid_menus())
def test_silent_caller_reaches_someone_quickly(d):
    """Only timeouts: each node on the on_fail chain is visited once, so the bound is sum(retries)."""
    menu = Menu.from_dict(d)
    s = MenuSession(menu, max_steps=1000)
    step, steps = s.start(), 1
    while not step.final:
        step = s.timeout()
        steps += 1
    assert steps <= 1 + sum(node.retries for node in menu.nodes.values())
    assert s.path == []


# ---------------------------------------------------------------- the {district} placeholder


def test_district_placeholder_is_filled_in_prompts_info_and_eservice_texts_only():
    from agi.menu import menu_with_district, with_district

    d = tree()
    d["nodes"]["main"]["prompt"]["sv"] = "Välkommen till {district}. Tryck 1."
    d["nodes"]["main"]["options"]["4"]["prompt"]["en"] = "{district} is open 8-16"
    d["nodes"]["school"]["options"][1]["address"]["sv"] = "{district}.stockholm.se"
    assert validate(Menu.from_dict(d), SKILLS) == []
    filled = with_district(d, "Hässelby-Vällingby")
    assert filled["nodes"]["main"]["prompt"]["sv"] == "Välkommen till Hässelby-Vällingby. Tryck 1."
    assert filled["nodes"]["main"]["options"]["4"]["prompt"]["en"] == "Hässelby-Vällingby is open 8-16"
    assert filled["nodes"]["school"]["options"][1]["address"]["sv"] == "Hässelby-Vällingby.stockholm.se"
    assert d["nodes"]["main"]["prompt"]["sv"].startswith("Välkommen till {district}")   # a copy
    menu = menu_with_district(Menu.from_dict(d), "Bromma")
    assert MenuSession(menu).start().then.prompt.text == "Välkommen till Bromma. Tryck 1."
    assert menu.nodes["main"].options == Menu.from_dict(with_district(d, "Bromma")).nodes["main"].options


@pytest.mark.parametrize("text, bad", [
    ("Välkommen till {name}", "{name}"),
    ("Välkommen till {District}", "{District}"),
    ("Tryck { 1", "{"),
    ("{district}} och mer", "}"),
])
def test_only_the_district_placeholder_is_allowed(text, bad):
    d = tree()
    d["nodes"]["school"]["prompt"]["en"] = text
    problems = [str(p) for p in validate(Menu.from_dict(d), SKILLS)]
    assert problems == [f"school: prompt for 'en' has {bad!r}: the only placeholder is {{district}}"]
