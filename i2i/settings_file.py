"""Reading a YAML settings file (config.yaml, --config, --degradation-settings): a mapping of
setting: value, dashes read as underscores; anything else is one line naming the file."""
from __future__ import annotations

from pathlib import Path

from i2i.errors import UsageError, one_line


def read_yaml(path: Path) -> dict:
    """The file's mapping ({} for an empty file), keys with `_` for `-`."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
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
