"""Two versions of a menu compared as an administrator reads them: node by node, what was
added, removed or changed (a prompt, an option's digit and what it does, the timeout), in
words, instead of a diff of the YAML. Pure: two menu bodies in, a list of changes out.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from kc.i18n import gettext as _

from .menu_forms import options_list


def describe(action: Mapping[str, Any] | None, names: Callable[[str, str], str]) -> str:
    """What an option does, in words: "kö: <the skill's name> (prioritet 1)", "undermeny: <node>"."""
    if not action:
        return "–"
    kind = action.get("action", "")
    if kind == "queue":
        text = _("queue: %(skill)s") % {"skill": names("skill", action.get("skill", ""))}
        return text + (" " + _("(priority %(n)s)") % {"n": action["priority"]}
                       if action.get("priority") else "")
    if kind == "submenu":
        return _("submenu: %(node)s") % {"node": action.get("node", "")}
    if kind == "transfer":
        number = action.get("number", "")
        return _("to the switchboard") if number == "switchboard" else (
            _("transfer to %(number)s") % {"number": number})
    if kind == "language":
        return _("language: %(language)s") % {"language": names("language", action.get("language", ""))}
    if kind == "info":
        return _("message: “%(text)s”") % {"text": _first(action.get("prompt"))}
    if kind == "eservice":
        return _("e-service: %(name)s") % {"name": action.get("name", "")}
    if kind == "repeat":
        return _("repeat the menu")
    if kind == "back":
        return _("back one step")
    return str(kind)


def _first(texts: Any) -> str:
    if isinstance(texts, Mapping) and texts:
        return str(next(iter(texts.values())))
    return ""


def compare(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None,
            names: Callable[[str, str], str]) -> list[dict[str, str]]:
    """Each change: {"node", "what", "before", "after", "kind": added|removed|changed}."""
    old_nodes = dict((old or {}).get("nodes") or {})
    new_nodes = dict((new or {}).get("nodes") or {})
    out: list[dict[str, str]] = []

    def add(node: str, what: str, before: str, after: str) -> None:
        kind = "added" if before == "–" else "removed" if after == "–" else "changed"
        out.append({"node": node, "what": what, "before": before, "after": after, "kind": kind})

    for key in ("root",):
        if (old or {}).get(key) != (new or {}).get(key):
            add("", _("first node"), str((old or {}).get(key) or "–"), str((new or {}).get(key) or "–"))
    if list((old or {}).get("languages") or []) != list((new or {}).get("languages") or []):
        add("", _("languages"), ", ".join((old or {}).get("languages") or []) or "–",
            ", ".join((new or {}).get("languages") or []) or "–")
    for node_id in dict.fromkeys([*old_nodes, *new_nodes]):
        a, b = old_nodes.get(node_id), new_nodes.get(node_id)
        if a is None or b is None:
            add(node_id, _("node"), "–" if a is None else _("the node"), "–" if b is None else _("the node"))
            continue
        for lang in dict.fromkeys([*(a.get("prompt") or {}), *(b.get("prompt") or {})]):
            before, after = (a.get("prompt") or {}).get(lang, ""), (b.get("prompt") or {}).get(lang, "")
            if before != after:
                add(node_id, _("prompt (%(language)s)") % {"language": lang}, before or "–", after or "–")
        for key, what in (("timeout", _("waits for a digit (s)")), ("retries", _("tries"))):
            if a.get(key) != b.get(key):
                add(node_id, what, str(a.get(key, "–")), str(b.get(key, "–")))
        if a.get("on_fail") != b.get("on_fail"):
            add(node_id, _("no or wrong digit"), describe(a.get("on_fail"), names),
                describe(b.get("on_fail"), names))
        old_opts, new_opts = dict(options_list(a)), dict(options_list(b))
        for digit in dict.fromkeys([*old_opts, *new_opts]):
            if old_opts.get(digit) != new_opts.get(digit):
                add(node_id, _("digit %(digit)s") % {"digit": digit},
                    describe(old_opts.get(digit), names) if digit in old_opts else "–",
                    describe(new_opts.get(digit), names) if digit in new_opts else "–")
    return out
