"""Press-a-digit menu: the model, its validation, and a pure engine.

The FastAGI handler, the admin preview and the tests all drive the same
`MenuSession`, so what a resident hears is exactly what the preview shows.
Nothing here does I/O or reads a clock: digits and timeouts come in, steps
(things to say, then one thing to do) go out.

Malformed *shapes* (wrong types, unknown actions, typos in keys) raise
`MenuError` from `Menu.from_dict`; *semantic* mistakes (a missing node, an
unknown skill, a duplicate digit...) stay representable so an editor can hold
a draft and list them with `validate`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Iterable, Literal, Mapping, NamedTuple, Union

DIGITS = "0123456789*#"
TIMEOUT_RANGE = (1, 60)  # seconds, inclusive
RETRIES_RANGE = (1, 10)  # inclusive
PRIORITY_RANGE = (0, 10)  # inclusive; higher is answered first (Asterisk QUEUE_PRIO)
DEFAULT_TIMEOUT = 5
DEFAULT_RETRIES = 3
SWITCHBOARD = "switchboard"
THEN_VALUES = ("return", "hangup")
_PHONE_NUMBER = re.compile(r"^\+?[0-9]{2,20}$")

Texts = Mapping[str, str]
_NO_TEXTS: Texts = MappingProxyType({})


class MenuError(ValueError):
    """Menu data that cannot even be read; the message names the node."""


class SessionError(RuntimeError):
    """The session was driven out of order (before start, after the end)."""


# --------------------------------------------------------------------------
# Actions: what a digit (or running out of retries) does.


@dataclass(frozen=True)
class SubmenuAction:
    """Go one level down; `back` returns to where the caller came from."""

    node: str
    kind: ClassVar[str] = "submenu"


@dataclass(frozen=True)
class QueueAction:
    """Hand the call to the agent queue for a skill."""

    skill: str
    priority: int = 0
    survey: bool = False      # the caller agreed to the survey after the call by choosing this
    kind: ClassVar[str] = "queue"


@dataclass(frozen=True)
class InfoAction:
    """Say a recorded or synthesised message, then return to the menu or hang up."""

    prompt: Texts
    audio: Texts = field(default_factory=lambda: _NO_TEXTS)
    then: Literal["return", "hangup"] = "return"
    kind: ClassVar[str] = "info"


@dataclass(frozen=True)
class EServiceAction:
    """Point the caller to a web e-service (and record that we did)."""

    name: str
    address: Texts
    audio: Texts = field(default_factory=lambda: _NO_TEXTS)
    then: Literal["return", "hangup"] = "return"
    kind: ClassVar[str] = "eservice"


@dataclass(frozen=True)
class TransferAction:
    """Blind transfer to a phone number, or to the symbolic `switchboard`."""

    number: str
    kind: ClassVar[str] = "transfer"


@dataclass(frozen=True)
class DirectoryAction:
    """Dial by name: the caller keys the first letters of a surname, hears the matches of the
    staff directory and presses a digit to be connected (`agi.dial_by_name`)."""

    kind: ClassVar[str] = "directory"


@dataclass(frozen=True)
class LanguageAction:
    """Switch to `language` and replay the node; pressed again, back to the default.

    The toggle lets one key serve "For English, press 9" and "För svenska, tryck 9".
    """

    language: str
    kind: ClassVar[str] = "language"


@dataclass(frozen=True)
class RepeatAction:
    """Replay the current node's prompt (not counted as a failure)."""

    kind: ClassVar[str] = "repeat"


@dataclass(frozen=True)
class BackAction:
    """Return to the node the caller came from (the root if none)."""

    kind: ClassVar[str] = "back"


Action = Union[
    SubmenuAction,
    QueueAction,
    InfoAction,
    EServiceAction,
    TransferAction,
    DirectoryAction,
    LanguageAction,
    RepeatAction,
    BackAction,
]
ACTION_KINDS = ("submenu", "queue", "info", "eservice", "transfer", "directory", "language",
                "repeat", "back")


@dataclass(frozen=True)
class Option:
    """One digit of a node; kept as a list entry so duplicates stay visible to `validate`."""

    digit: str
    action: Action


@dataclass(frozen=True)
class Node:
    """One prompt the caller hears and the digits it accepts."""

    id: str
    prompt: Texts
    options: tuple[Option, ...] = ()
    audio: Texts = field(default_factory=lambda: _NO_TEXTS)
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    on_fail: Action = TransferAction(SWITCHBOARD)

    def action_for(self, digit: str) -> Action | None:
        """The first option bound to `digit` (first wins if a draft has duplicates)."""
        for option in self.options:
            if option.digit == digit:
                return option.action
        return None


@dataclass(frozen=True)
class Menu:
    """A whole menu tree; `languages[0]` is what callers hear first."""

    languages: tuple[str, ...]
    root: str
    nodes: Mapping[str, Node]

    @property
    def default_language(self) -> str:
        return self.languages[0]

    @classmethod
    def from_dict(cls, data: Any) -> Menu:
        """Read the YAML-shaped dict; raise `MenuError` naming the node on bad shapes."""
        return _parse_menu(data)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for YAML; `Menu.from_dict(m.to_dict()) == m`."""
        return {
            "languages": list(self.languages),
            "root": self.root,
            "nodes": {node_id: _dump_node(node) for node_id, node in self.nodes.items()},
        }


# --------------------------------------------------------------------------
# Parsing and dumping.


def _fail(where: str, message: str) -> MenuError:
    return MenuError(f"{where}: {message}")


def _require_mapping(value: Any, where: str, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(where, f"{what} must be a mapping, got {type(value).__name__}")
    return value


def _check_keys(data: Mapping[str, Any], allowed: Iterable[str], required: Iterable[str], where: str) -> None:
    allowed = set(allowed)
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise _fail(where, f"unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")
    missing = [k for k in required if k not in data]
    if missing:
        raise _fail(where, f"missing key(s) {', '.join(missing)}")


def _str(value: Any, where: str, what: str) -> str:
    if not isinstance(value, str):
        raise _fail(where, f"{what} must be a string, got {type(value).__name__}")
    return value


def _int(value: Any, where: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(where, f"{what} must be an integer, got {value!r}")
    return value


def _number(value: Any, where: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(where, f"{what} must be a number, got {value!r}")
    return value


def _texts(value: Any, where: str, what: str) -> Texts:
    if value is None:
        return _NO_TEXTS
    mapping = _require_mapping(value, where, what)
    out = {}
    for language, text in mapping.items():
        out[_str(language, where, f"{what} language")] = _str(text, where, f"{what}[{language}]")
    return MappingProxyType(out)


def _digit_key(value: Any, where: str) -> str:
    # YAML reads `1:` as the integer 1; accept it, leave range checks to validate().
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _fail(where, f"digit must be a string, got {value!r}")
    return str(value)


def _parse_action(data: Any, where: str) -> Action:
    data = _require_mapping(data, where, "action")
    kind = data.get("action")
    fields: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
        "submenu": (("node",), ()),
        "queue": (("skill",), ("priority", "survey")),
        "info": (("prompt",), ("audio", "then")),
        "eservice": (("name", "address"), ("audio", "then")),
        "transfer": (("number",), ()),
        "directory": ((), ()),
        "language": (("language",), ()),
        "repeat": ((), ()),
        "back": ((), ()),
    }
    if kind not in fields:
        raise _fail(where, f"unknown action {kind!r} (expected one of {', '.join(ACTION_KINDS)})")
    required, optional = fields[kind]
    _check_keys(data, ("action", *required, *optional), required, f"{where} ({kind})")
    if kind == "submenu":
        return SubmenuAction(_str(data["node"], where, "node"))
    if kind == "queue":
        survey = data.get("survey", False)
        if not isinstance(survey, bool):
            raise _fail(where, f"survey must be true or false, got {survey!r}")
        return QueueAction(_str(data["skill"], where, "skill"),
                           _int(data.get("priority", 0), where, "priority"), survey)
    if kind in ("info", "eservice"):
        then = data.get("then", "return")
        if then not in THEN_VALUES:
            raise _fail(where, f"then must be 'return' or 'hangup', got {then!r}")
        audio = _texts(data.get("audio"), where, "audio")
        if kind == "info":
            return InfoAction(_texts(data["prompt"], where, "prompt"), audio, then)
        return EServiceAction(_str(data["name"], where, "name"), _texts(data["address"], where, "address"), audio, then)
    if kind == "transfer":
        return TransferAction(_str(data["number"], where, "number"))
    if kind == "language":
        return LanguageAction(_str(data["language"], where, "language"))
    if kind == "directory":
        return DirectoryAction()
    return RepeatAction() if kind == "repeat" else BackAction()


def _parse_options(value: Any, where: str) -> tuple[Option, ...]:
    if value is None:
        return ()
    if isinstance(value, Mapping):
        return tuple(
            Option(_digit_key(d, where), _parse_action(a, f"{where} option {d}")) for d, a in value.items()
        )
    if isinstance(value, list):
        options = []
        for i, item in enumerate(value):
            item = _require_mapping(item, f"{where} option #{i + 1}", "option")
            if "digit" not in item:
                raise _fail(f"{where} option #{i + 1}", "missing key digit")
            digit = _digit_key(item["digit"], where)
            action = {k: v for k, v in item.items() if k != "digit"}
            options.append(Option(digit, _parse_action(action, f"{where} option {digit}")))
        return tuple(options)
    raise _fail(where, f"options must be a mapping or a list, got {type(value).__name__}")


def _parse_node(node_id: Any, data: Any) -> Node:
    where = f"node {node_id!r}"
    if not isinstance(node_id, str) or not node_id:
        raise _fail(where, "node id must be a non-empty string")
    data = _require_mapping(data, where, "node")
    _check_keys(data, ("prompt", "audio", "timeout", "retries", "on_fail", "options"), ("prompt",), where)
    on_fail = data.get("on_fail")
    return Node(
        id=node_id,
        prompt=_texts(data["prompt"], where, "prompt"),
        options=_parse_options(data.get("options"), where),
        audio=_texts(data.get("audio"), where, "audio"),
        timeout=_number(data.get("timeout", DEFAULT_TIMEOUT), where, "timeout"),
        retries=_int(data.get("retries", DEFAULT_RETRIES), where, "retries"),
        on_fail=TransferAction(SWITCHBOARD) if on_fail is None else _parse_action(on_fail, f"{where} on_fail"),
    )


def _parse_menu(data: Any) -> Menu:
    data = _require_mapping(data, "menu", "menu")
    _check_keys(data, ("languages", "root", "nodes"), ("languages", "root", "nodes"), "menu")
    languages = data["languages"]
    if not isinstance(languages, list) or not languages:
        raise _fail("menu", "languages must be a non-empty list")
    langs = tuple(_str(lang, "menu", "language") for lang in languages)
    root = _str(data["root"], "menu", "root")
    nodes = _require_mapping(data["nodes"], "menu", "nodes")
    parsed = {}
    for node_id, node in nodes.items():
        parsed[node_id] = _parse_node(node_id, node)
    return Menu(langs, root, MappingProxyType(parsed))


def _dump_action(action: Action) -> dict[str, Any]:
    out: dict[str, Any] = {"action": action.kind}
    if isinstance(action, SubmenuAction):
        out["node"] = action.node
    elif isinstance(action, QueueAction):
        out.update(skill=action.skill, priority=action.priority)
        if action.survey:
            out["survey"] = True
    elif isinstance(action, InfoAction):
        out["prompt"] = dict(action.prompt)
    elif isinstance(action, EServiceAction):
        out.update(name=action.name, address=dict(action.address))
    elif isinstance(action, TransferAction):
        out["number"] = action.number
    elif isinstance(action, LanguageAction):
        out["language"] = action.language
    if isinstance(action, (InfoAction, EServiceAction)):
        if action.audio:
            out["audio"] = dict(action.audio)
        out["then"] = action.then
    return out


def _dump_node(node: Node) -> dict[str, Any]:
    digits = [o.digit for o in node.options]
    if len(set(digits)) == len(digits):
        options: Any = {o.digit: _dump_action(o.action) for o in node.options}
    else:  # a draft with duplicates only survives as a list
        options = [{"digit": o.digit, **_dump_action(o.action)} for o in node.options]
    return {
        "prompt": dict(node.prompt),
        "audio": dict(node.audio),
        "timeout": node.timeout,
        "retries": node.retries,
        "on_fail": _dump_action(node.on_fail),
        "options": options,
    }


# --------------------------------------------------------------------------
# The one placeholder: `{district}` in any prompt, info or e-service text is replaced by the
# name of the district the resident called (districts may share one menu).

PLACEHOLDER = "{district}"
_BRACED = re.compile(r"\{[^{}]*\}|[{}]")
_TEXT_KEYS = ("prompt", "address")


def placeholder_problems(text: str) -> list[str]:
    """Every `{...}` (or stray brace) in `text` other than `{district}`."""
    return [m.group(0) for m in _BRACED.finditer(text) if m.group(0) != PLACEHOLDER]


def with_district(body: Any, district_name: str) -> Any:
    """A copy of a menu dict with `{district}` replaced in every prompt, info and e-service
    text; anything else (shape, digits, skills) is untouched, so `Menu.from_dict` reads it
    exactly as before."""
    if isinstance(body, Mapping):
        out = {}
        for key, value in body.items():
            if (key in _TEXT_KEYS and isinstance(value, Mapping)
                    and all(isinstance(text, str) for text in value.values())):
                out[key] = {lang: text.replace(PLACEHOLDER, district_name) for lang, text in value.items()}
            else:
                out[key] = with_district(value, district_name)
        return out
    if isinstance(body, list):
        return [with_district(item, district_name) for item in body]
    return body


def menu_with_district(menu: Menu, district_name: str) -> Menu:
    return Menu.from_dict(with_district(menu.to_dict(), district_name))


def queued_skills(menu: Menu) -> list[tuple[str, str, str]]:
    """(node id, where, skill) of every queue action, in node order."""
    out = []
    for node_id, node in menu.nodes.items():
        for option in node.options:
            if isinstance(option.action, QueueAction):
                out.append((node_id, f"option {option.digit!r}", option.action.skill))
        if isinstance(node.on_fail, QueueAction):
            out.append((node_id, "on_fail", node.on_fail.skill))
    return out


# --------------------------------------------------------------------------
# Validation.


@dataclass(frozen=True)
class Problem:
    """Something an editor must fix before the menu goes live; node_id None = menu-wide."""

    node_id: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.node_id or 'menu'}: {self.message}"


def _is_final(action: Action) -> bool:
    """Does this action end the menu for the caller (queue, transfer or hang up)?"""
    if isinstance(action, (QueueAction, TransferAction, DirectoryAction)):
        return True
    return isinstance(action, (InfoAction, EServiceAction)) and action.then == "hangup"


def _edges(node: Node) -> list[str]:
    actions = [o.action for o in node.options] + [node.on_fail]
    return [a.node for a in actions if isinstance(a, SubmenuAction)]


def _reachable(menu: Menu) -> set[str]:
    seen, todo = set(), [menu.root]
    while todo:
        node_id = todo.pop()
        if node_id in seen or node_id not in menu.nodes:
            continue
        seen.add(node_id)
        todo.extend(_edges(menu.nodes[node_id]))
    return seen


def _with_exit(menu: Menu) -> set[str]:
    """Nodes from which a pressing caller can reach a queue, transfer or hang-up."""
    good: set[str] = set()
    changed = True
    while changed:
        changed = False
        for node_id, node in menu.nodes.items():
            if node_id in good:
                continue
            for option in node.options:
                a = option.action
                if (
                    _is_final(a)
                    or (isinstance(a, SubmenuAction) and a.node in good)
                    or (isinstance(a, BackAction) and node_id != menu.root)
                ):
                    good.add(node_id)
                    changed = True
                    break
    return good


def _check_texts(texts: Texts, languages: tuple[str, ...], what: str) -> list[str]:
    msgs = [f"{what} has no text for language {lang!r}" for lang in languages if not texts.get(lang, "").strip()]
    for lang, text in texts.items():
        msgs += [f"{what} for {lang!r} has {bad!r}: the only placeholder is {PLACEHOLDER}"
                 for bad in placeholder_problems(text)]
    return msgs


def _check_action(
    action: Action, what: str, menu: Menu, node_id: str, known_skills: set[str] | None
) -> list[str]:
    msgs: list[str] = []
    if isinstance(action, SubmenuAction):
        if action.node not in menu.nodes:
            msgs.append(f"{what} points to missing node {action.node!r}")
        elif action.node == node_id:
            msgs.append(f"{what} points to its own node (use repeat)")
    elif isinstance(action, QueueAction):
        if not action.skill:
            msgs.append(f"{what} queues without a skill")
        elif known_skills is not None and action.skill not in known_skills:
            msgs.append(f"{what} queues for unknown skill {action.skill!r} (no agent has it)")
        lo, hi = PRIORITY_RANGE
        if not lo <= action.priority <= hi:
            msgs.append(f"{what} priority {action.priority} out of range {lo}..{hi}")
    elif isinstance(action, InfoAction):
        msgs += _check_texts(action.prompt, menu.languages, f"{what} info")
    elif isinstance(action, EServiceAction):
        if not action.name.strip():
            msgs.append(f"{what} e-service has no name")
        msgs += _check_texts(action.address, menu.languages, f"{what} e-service address")
    elif isinstance(action, TransferAction):
        if action.number != SWITCHBOARD and not _PHONE_NUMBER.match(action.number):
            msgs.append(f"{what} transfers to invalid number {action.number!r}")
    elif isinstance(action, LanguageAction):
        if action.language not in menu.languages:
            msgs.append(f"{what} switches to language {action.language!r} the menu lacks")
    return msgs


def _fail_chain_loop(menu: Menu, node_id: str) -> str | None:
    """Where a silent caller would loop forever through on_fail submenus, if anywhere."""
    seen = [node_id]
    current = menu.nodes[node_id]
    while isinstance(current.on_fail, SubmenuAction) and current.on_fail.node in menu.nodes:
        nxt = current.on_fail.node
        if nxt in seen:
            return " -> ".join([*seen, nxt])
        seen.append(nxt)
        current = menu.nodes[nxt]
    return None


def validate(menu: Menu, known_skills: set[str] | None = None) -> list[Problem]:
    """Everything wrong with a menu, most structural first; [] means it can go live.

    `known_skills=None` skips the skill check (e.g. a preview without the agent list).
    """
    problems: list[Problem] = []

    def add(node_id: str | None, message: str) -> None:
        problems.append(Problem(node_id, message))

    if not menu.languages:
        add(None, "menu has no languages")
    for lang in sorted({x for x in menu.languages if menu.languages.count(x) > 1}):
        add(None, f"language {lang!r} listed twice")
    if menu.root not in menu.nodes:
        add(None, f"root node {menu.root!r} does not exist")

    reachable = _reachable(menu)
    with_exit = _with_exit(menu)
    for node_id, node in menu.nodes.items():
        if node_id not in reachable:
            add(node_id, "no path from the root reaches this node")
        for msg in _check_texts(node.prompt, menu.languages, "prompt"):
            add(node_id, msg)
        lo, hi = TIMEOUT_RANGE
        if not lo <= node.timeout <= hi:
            add(node_id, f"timeout {node.timeout} out of range {lo}..{hi} seconds")
        lo, hi = RETRIES_RANGE
        if not lo <= node.retries <= hi:
            add(node_id, f"retries {node.retries} out of range {lo}..{hi}")
        seen: set[str] = set()
        for option in node.options:
            what = f"option {option.digit!r}"
            if len(option.digit) != 1 or option.digit not in DIGITS:
                add(node_id, f"invalid digit {option.digit!r} (use one of 0-9, *, #)")
            if option.digit in seen:
                add(node_id, f"duplicate digit {option.digit!r}")
            seen.add(option.digit)
            for msg in _check_action(option.action, what, menu, node_id, known_skills):
                add(node_id, msg)
        for msg in _check_action(node.on_fail, "on_fail", menu, node_id, known_skills):
            add(node_id, msg)
        if not (_is_final(node.on_fail) or isinstance(node.on_fail, SubmenuAction)):
            add(node_id, f"on_fail must queue, transfer, hang up or open a submenu, not {node.on_fail.kind!r}")
        loop = _fail_chain_loop(menu, node_id)
        if loop:
            add(node_id, f"on_fail loops ({loop}); a silent caller would never reach anyone")
        if node_id not in with_exit:
            add(node_id, "no way out: no option leads to a queue, transfer or hang-up")
    return problems


# --------------------------------------------------------------------------
# Engine.


@dataclass(frozen=True)
class Speech:
    """Something to say; `audio` (a recording) wins over synthesising `text`.

    `interruptible`: a digit pressed while it plays ends it and goes to the next `Collect`.
    """

    text: str
    language: str
    audio: str | None = None
    interruptible: bool = True


@dataclass(frozen=True)
class Collect:
    """Play `prompt` (interruptible) and wait `timeout` seconds for one digit."""

    node_id: str
    prompt: Speech
    timeout: float


@dataclass(frozen=True)
class Queue:
    skill: str
    priority: int = 0
    survey: bool = False      # the caller agreed in the menu to the survey after the call


@dataclass(frozen=True)
class Transfer:
    target: str  # a phone number or "switchboard"


@dataclass(frozen=True)
class DialByName:
    """The caller picks a person of the staff directory by keypad (`DirectoryAction`)."""


@dataclass(frozen=True)
class Hangup:
    # "done" is for callers of the engine that end a session without a menu action.
    reason: Literal["info", "eservice", "done"]


Final = Union[Queue, Transfer, DialByName, Hangup]


@dataclass(frozen=True)
class Step:
    """Say `say` in order, then do `then` (exactly one)."""

    say: tuple[Speech, ...]
    then: Collect | Queue | Transfer | DialByName | Hangup

    @property
    def final(self) -> bool:
        return not isinstance(self.then, Collect)


class Event(NamedTuple):
    """One line of the contact's record, e.g. ("digit", "1") or ("menu", "main")."""

    kind: str
    detail: str


def _text(texts: Texts, language: str, default: str) -> str:
    # A valid menu has every language; a draft in preview falls back instead of failing.
    return texts.get(language) or texts.get(default) or next(iter(texts.values()), "")


class MenuSession:
    """One caller's walk through a menu.

    Failures (unknown digit, junk input, timeout) are counted per node and reset
    on any valid choice or on entering a node; at `retries` the node's `on_fail`
    runs. Hard cap: the `max_steps`-th step (start() counts) is always final --
    the node's `on_fail` if that is a queue or transfer, else Transfer("switchboard")
    -- so a caller reaches a person in bounded time whatever they press.
    """

    def __init__(self, menu: Menu, language: str | None = None, max_steps: int = 50):
        if not menu.languages:
            raise MenuError("menu: has no languages")
        if menu.root not in menu.nodes:
            raise MenuError(f"menu: root node {menu.root!r} does not exist")
        if max_steps < 1:
            raise ValueError("max_steps must be at least 1")
        self.menu = menu
        self.max_steps = max_steps
        # An unknown preferred language (e.g. from a caller's history) falls back to the default.
        self.language = language if language in menu.languages else menu.default_language
        self.node_id = menu.root
        self.path: list[str] = []
        self.events: list[Event] = []
        self.finished = False
        self.outcome: Final | None = None
        self.steps = 0
        self._started = False
        self._failures = 0
        self._stack: list[str] = []

    # -- public API --

    def start(self) -> Step:
        if self._started:
            raise SessionError("start() called twice")
        self._started = True
        self._enter(self.menu.root)
        return self._emit((), self._collect())

    def press(self, digit: str) -> Step:
        """Feed whatever the telephony side read; anything but one of 0-9*# is unknown."""
        self._check_live()
        d = digit if isinstance(digit, str) else str(digit)
        self.path.append(d)
        valid = len(d) == 1 and d in DIGITS
        action = self._node.action_for(d) if valid else None
        if action is None or (isinstance(action, LanguageAction) and action.language not in self.menu.languages):
            return self._failure(Event("unknown", d))
        self._event("digit", d)
        self._failures = 0
        return self._apply(action, f"{self.node_id}/{d}")

    def timeout(self) -> Step:
        self._check_live()
        return self._failure(Event("timeout", self.node_id))

    def give_up(self) -> Step:
        """The caller stayed silent as long as the centre waits (however many tries the node
        has left): a timeout, then the node's default action at once."""
        self._check_live()
        self.events.append(Event("timeout", self.node_id))
        self._event("fail", self.node_id)
        return self._apply(self._node.on_fail, f"{self.node_id}/fail")

    # -- internals --

    @property
    def _node(self) -> Node:
        return self.menu.nodes[self.node_id]

    def _check_live(self) -> None:
        if not self._started:
            raise SessionError("call start() first")
        if self.finished:
            raise SessionError(f"session already finished with {self.outcome!r}")

    def _event(self, kind: str, detail: str) -> None:
        self.events.append(Event(kind, detail))

    def _enter(self, node_id: str) -> None:
        self.node_id = node_id
        self._failures = 0
        self._event("menu", node_id)

    def _speech(self, texts: Texts, audio: Texts, interruptible: bool) -> Speech:
        lang = self.language
        return Speech(_text(texts, lang, self.menu.default_language), lang, audio.get(lang), interruptible)

    def _collect(self) -> Collect:
        node = self._node
        return Collect(node.id, self._speech(node.prompt, node.audio, True), float(node.timeout))

    def _failure(self, event: Event) -> Step:
        self.events.append(event)
        self._failures += 1
        if self._failures < self._node.retries:
            return self._emit((), self._collect())
        self._event("fail", self.node_id)
        return self._apply(self._node.on_fail, f"{self.node_id}/fail")

    def _apply(self, action: Action, key: str) -> Step:
        """Carry out an action; never calls _failure, so on_fail cannot recurse."""
        if isinstance(action, QueueAction):
            return self._emit((), Queue(action.skill, action.priority, action.survey))
        if isinstance(action, TransferAction):
            return self._emit((), Transfer(action.number))
        if isinstance(action, DirectoryAction):
            return self._emit((), DialByName())
        if isinstance(action, SubmenuAction):
            if action.node not in self.menu.nodes:  # only in unvalidated drafts
                self._event("error", f"missing node {action.node}")
                return self._emit((), Transfer(SWITCHBOARD))
            self._stack.append(self.node_id)
            self._enter(action.node)
            return self._emit((), self._collect())
        if isinstance(action, (InfoAction, EServiceAction)):
            returning = action.then == "return"
            if isinstance(action, InfoAction):
                self._event("info", key)
                speech = self._speech(action.prompt, action.audio, returning)
                reason = "info"
            else:
                self._event("eservice", action.name)
                speech = self._speech(action.address, action.audio, returning)
                reason = "eservice"
            return self._emit((speech,), self._collect() if returning else Hangup(reason))
        if isinstance(action, LanguageAction):
            if action.language not in self.menu.languages:  # only reachable via a draft's on_fail
                return self._emit((), Transfer(SWITCHBOARD))
            toggle_back = self.language == action.language
            self.language = self.menu.default_language if toggle_back else action.language
            self._event("language", self.language)
            return self._emit((), self._collect())
        if isinstance(action, BackAction):
            self._enter(self._stack.pop() if self._stack else self.menu.root)
            return self._emit((), self._collect())
        self._event("repeat", self.node_id)  # RepeatAction
        return self._emit((), self._collect())

    def _emit(self, say: tuple[Speech, ...], then: Collect | Final) -> Step:
        self.steps += 1
        if isinstance(then, Collect) and self.steps >= self.max_steps:
            self._event("cap", self.node_id)
            on_fail = self._node.on_fail
            if isinstance(on_fail, QueueAction):
                then = Queue(on_fail.skill, on_fail.priority, on_fail.survey)
            elif isinstance(on_fail, TransferAction):
                then = Transfer(on_fail.number)
            else:
                then = Transfer(SWITCHBOARD)
        if not isinstance(then, Collect):
            self.finished = True
            self.outcome = then
            if isinstance(then, Queue):
                self._event("queue", then.skill)
            elif isinstance(then, Transfer):
                self._event("transfer", then.target)
            elif isinstance(then, DialByName):
                self._event("directory", self.node_id)
            else:
                self._event("hangup", then.reason)
        return Step(tuple(say), then)
