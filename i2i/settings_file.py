"""Reading a YAML settings file (config.yaml, --config, --degradation-settings): a mapping of
setting: value, dashes read as underscores; anything else is one line naming the file."""
from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from i2i.errors import UsageError, one_line


def read_yaml(path: Path) -> dict:
    """The file's mapping ({} for an empty file), keys with `_` for `-`."""
    import yaml

    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_loader())  # noqa: S506 (a SafeLoader)
    except OSError as error:
        raise UsageError(f"{path}: cannot read config file ({error.strerror})") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a text file (UTF-8 YAML expected)") from None
    except yaml.YAMLError as error:
        raise UsageError(f"{path}: not valid YAML ({one_line(error, 200)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{path}: a config file must be a mapping of setting: value")
    return underscored(data, f"{path}: ")


def underscored(settings: Mapping[Any, Any], where: str = "") -> dict[str, Any]:
    """`settings` with each key as its setting's name: `max-steps` (as the flag is spelt) is
    `max_steps`. The one rule for every source of settings (a YAML file, a Python mapping), so
    that what one accepts the other does too; a setting given under both spellings is one
    line (`where`: what to prefix it with, e.g. the file), not a silent choice of one."""
    out: dict[str, Any] = {}
    spelt: dict[str, Any] = {}
    for key, value in settings.items():
        name = str(key).replace("-", "_")
        if name in out:
            raise UsageError(f"{where}{spelt[name]!r} and {key!r} are the same setting; give it once")
        out[name], spelt[name] = value, key
    return out


@functools.cache
def _loader() -> type:
    """PyYAML's SafeLoader, refusing a key given twice in one mapping (it would keep the last
    silently: `lr: 1e-4` then, further down, `lr: 2e-4`)."""
    import yaml

    class UniqueKeys(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen = []
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(None, None, f"{key!r} is given twice",
                                                            key_node.start_mark)
                seen.append(key)
            return super().construct_mapping(node, deep)

    return UniqueKeys
