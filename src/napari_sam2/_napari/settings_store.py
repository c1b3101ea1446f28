"""The widget's remembered settings: one small JSON file in the user's config folder (Qt-free).

``$NAPARI_SAM2_CONFIG_DIR/settings.json`` when that is set (tests point it at a temporary folder),
else platformdirs' user config folder (``$XDG_CONFIG_HOME/napari-sam2`` or ``~/.config/napari-sam2``
on Linux; platformdirs is a napari dependency). A missing, unreadable or broken file means "nothing
remembered"; a folder that cannot be written costs the memory, never the session.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

ENV_CONFIG_DIR = "NAPARI_SAM2_CONFIG_DIR"
FILE_NAME = "settings.json"

log = logging.getLogger("napari_sam2")


def config_dir() -> Path:
    """The folder holding ``settings.json``."""
    env = os.environ.get(ENV_CONFIG_DIR)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return platformdirs.user_config_path("napari-sam2", appauthor=False)


def settings_path() -> Path:
    return config_dir() / FILE_NAME


def load_settings() -> dict[str, Any]:
    """The remembered settings ({} when there are none or the file cannot be read)."""
    path = settings_path()
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        log.warning("napari-sam2: ignoring the settings file %s (%s)", path, err)
        return {}
    return values if isinstance(values, dict) else {}


def save_settings(values: dict[str, Any]) -> bool:
    """Write ``values`` (atomically: a crash never leaves half a file); False when it could not."""
    path = settings_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{FILE_NAME}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(values, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
    except (OSError, TypeError, ValueError) as err:
        log.warning("napari-sam2: could not remember the settings in %s (%s)", path, err)
        return False
    return True
