"""YAML as administrators write it, read strictly: a key given twice in one mapping is an
error naming both lines (PyYAML would silently keep the last one, so of two `'1'` options in a
menu only the second would be published). Anchors, aliases and merge keys still work.
"""
from __future__ import annotations

from typing import Any

import yaml

from .errors import InvalidInput


class _StrictLoader(yaml.SafeLoader):
    pass


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            continue     # the base constructor reports an unhashable key
        line = key_node.start_mark.line + 1
        if key in seen:
            raise InvalidInput(f"line {line}: key {key!r} given twice in one mapping "
                               f"(first on line {seen[key]})")
        seen[key] = line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load(text: str) -> Any:
    """The document in `text`; `InvalidInput` for a duplicated key or text that is not YAML."""
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"not valid YAML: {exc}") from None


def dump(data: Any) -> str:
    """Block-style YAML with å, ä, ö as written and the keys in the order given."""
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100)
