"""Reading a YAML settings file (config.yaml, --config, --degradation-settings): a mapping of
setting: value, dashes read as underscores; anything else is one line naming the file."""
from __future__ import annotations

import functools
from pathlib import Path

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
    return {str(k).replace("-", "_"): v for k, v in data.items()}


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
