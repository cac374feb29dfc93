"""The menu editor's forms: a menu node as the editor shows it, and back from a posted form.

Pure conversions between the menu's JSON body (`agi.menu`) and the fields of the editor's
forms; the pages (`admin_web.menu_pages`) do the requests, the saving and the rendering.
"""
from __future__ import annotations

import copy
import re
from typing import Any

from multidict import MultiDictProxy

from kc.errors import InvalidInput
from kc.i18n import N_, gettext

ACTION_KINDS = ["submenu", "queue", "info", "eservice", "transfer", "directory", "language",
                "repeat", "back"]
FAIL_KINDS = ["queue", "transfer", "directory", "submenu", "info", "eservice"]
NODE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


# Each action's own field (besides texts, priority and `then`); the form names it
# `<prefix>_<field>` so that only the chosen action's fields are read.
TARGET_FIELD = {"submenu": "node", "queue": "skill", "eservice": "name", "transfer": "number",
                "language": "language"}
# What a caller hears for an option ("For elderly care, press 1."), per menu language, and the
# words for actions without a name of their own.
PROMPT_LINE = {"sv": "För {label}, tryck {digit}.", "en": "For {label}, press {digit}."}
_LABELS = {"repeat": N_("hearing the menu again"), "back": N_("going back"),
           "switchboard": N_("the switchboard"), "info": N_("information")}


def label(action: dict[str, Any], lang: str, names: dict[str, str] | None = None) -> str:
    """A suggested label for an option in menu language `lang`: the queue's skill name, the
    e-service's name, the language's own name, "växeln" …"""
    kind = action.get("action", "repeat")
    names = names or {}
    if kind == "queue":
        return names.get(action.get("skill", ""), action.get("skill", "")).lower()
    if kind == "eservice":
        return str(action.get("name", ""))
    if kind == "language":
        from babel import Locale
        code = str(action.get("language", ""))
        try:
            return str(Locale.parse(code).get_display_name(code) or code)
        except (ValueError, TypeError):
            return code
    if kind == "submenu":
        return str(action.get("node", ""))
    if kind == "transfer" and action.get("number") == "switchboard":
        return gettext(_LABELS["switchboard"], lang)
    return gettext(_LABELS[kind], lang) if kind in _LABELS else ""


def action_view(action: dict[str, Any], languages: list[str],
                names: dict[str, str] | None = None) -> dict[str, Any]:
    kind = action.get("action", "repeat")
    target = TARGET_FIELD.get(kind)
    texts = action.get("prompt") or action.get("address") or {}
    return {"kind": kind, "target": action.get(target, "") if target else "",
            "priority": action.get("priority", 0), "then": action.get("then", "return"),
            "texts": {lang: texts.get(lang, "") for lang in languages},
            "labels": {lang: label(action, lang, names) for lang in languages}}


def options_list(node: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    opts = node.get("options") or {}
    if isinstance(opts, dict):
        return [(str(d), a) for d, a in opts.items()]
    return [(str(o["digit"]), {k: v for k, v in o.items() if k != "digit"}) for o in opts]


def tree(body: dict[str, Any]) -> list[tuple[int, str]]:
    """(depth, node id): depth-first from the root along submenus, then unreachable ones."""
    nodes = body.get("nodes", {})
    out: list[tuple[int, str]] = []
    seen: set[str] = set()

    def walk(node_id: str, depth: int) -> None:
        if node_id in seen or node_id not in nodes:
            return
        seen.add(node_id)
        out.append((depth, node_id))
        node = nodes[node_id]
        for _, action in options_list(node) + [("fail", node.get("on_fail") or {})]:
            if action.get("action") == "submenu":
                walk(action.get("node", ""), depth + 1)

    walk(body.get("root", ""), 0)
    out += [(0, n) for n in nodes if n not in seen]
    return out


def node_views(body: dict[str, Any], names: dict[str, str] | None = None) -> list[dict[str, Any]]:
    languages = body.get("languages", [])
    views = []
    for depth, node_id in tree(body):
        node = body["nodes"][node_id]
        views.append({
            "id": node_id, "depth": depth, "is_root": node_id == body.get("root"),
            "prompt": {lang: node.get("prompt", {}).get(lang, "") for lang in languages},
            "audio": node.get("audio") or {},
            "timeout": node.get("timeout", 5), "retries": node.get("retries", 3),
            "on_fail": action_view(node.get("on_fail") or {"action": "transfer", "number": "switchboard"},
                                   languages, names),
            "options": [{"digit": d, **action_view(a, languages, names)} for d, a in options_list(node)],
        })
    return views


def action_from_form(form: MultiDictProxy, prefix: str, languages: list[str]) -> dict[str, Any]:
    kind = str(form.get(f"{prefix}_kind", "")).strip()
    if kind not in ACTION_KINDS:
        raise InvalidInput(gettext("unknown action %(kind)s") % {"kind": repr(kind)})
    # the chosen action's own field; `<prefix>_target` is the older form's one field for all
    own = TARGET_FIELD.get(kind, "target")
    target = (str(form.get(f"{prefix}_{own}_other", "")).strip()
              or str(form.get(f"{prefix}_{own}", "")).strip()
              or str(form.get(f"{prefix}_target", "")).strip())
    texts = {lang: str(form.get(f"{prefix}_text_{lang}", "")).strip() for lang in languages}
    then = str(form.get(f"{prefix}_then", "return"))
    then = then if then in ("return", "hangup") else "return"
    if kind == "submenu":
        return {"action": kind, "node": target}
    if kind == "queue":
        raw = str(form.get(f"{prefix}_priority", "0")).strip() or "0"
        if not re.fullmatch(r"-?\d{1,3}", raw):
            raise InvalidInput(gettext("priority %(value)s must be a whole number") % {"value": repr(raw)})
        return {"action": kind, "skill": target, "priority": int(raw)}
    if kind == "info":
        return {"action": kind, "prompt": texts, "then": then}
    if kind == "eservice":
        return {"action": kind, "name": target, "address": texts, "then": then}
    if kind == "transfer":
        return {"action": kind, "number": target or "switchboard"}
    if kind == "language":
        return {"action": kind, "language": target}
    return {"action": kind}


def number(raw: Any, what: str, integer: bool = False) -> float | int:
    text = str(raw or "").strip()
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        raise InvalidInput(gettext("%(what)s %(value)s must be a number")
                           % {"what": what, "value": repr(text)}) from None
    return int(value) if not integer and float(value).is_integer() else value


def node_from_form(form: MultiDictProxy, old: dict[str, Any], languages: list[str]) -> dict[str, Any]:
    node = copy.deepcopy(old)
    node["prompt"] = {lang: str(form.get(f"prompt_{lang}", "")).strip() for lang in languages}
    node["timeout"] = number(form.get("timeout"), gettext("timeout"))
    node["retries"] = number(form.get("retries"), gettext("tries"), integer=True)
    node["on_fail"] = action_from_form(form, "fail", languages)
    options = []
    for idx in form.getall("opt", []):
        idx = str(idx)
        if not re.fullmatch(r"\d{1,3}|new", idx) or form.get(f"opt{idx}_delete"):
            continue
        digit = str(form.get(f"opt{idx}_digit", "")).strip()
        if idx == "new" and not digit:
            continue
        options.append({"digit": digit, **action_from_form(form, f"opt{idx}", languages)})
    node["options"] = options
    return node
