"""The plugin manager: built-in model plugins, entry points and a workspace plugins folder.

Built-in plugins register through the same hooks as outside ones. A plugin that fails to
import or to register is recorded by name in `broken()` and skipped; the CLI goes on.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from kagglesalt import hookspecs
from kagglesalt.errors import KaggleSaltError
from kagglesalt.model import settings
from kagglesalt.model.backend import quiet_native_stderr
from kagglesalt.model.spec import ModelSpec

DEFAULT_PLUGINS = ("kagglesalt_plugins.unet", "kagglesalt_plugins.unet_deep",
                   "kagglesalt_plugins.unet_lite")
ENTRY_POINT_GROUP = "kagglesalt"
PLUGINS_DIR_ENV = "KAGGLESALT_PLUGINS_DIR"


pm: pluggy.PluginManager
_broken: dict[str, str]
_loaded_dirs: set[Path]
_defaults_loaded: bool


def reset() -> None:
    """Start again with a fresh plugin manager (plugins load again on next use)."""
    global pm, _broken, _loaded_dirs, _defaults_loaded
    pm = pluggy.PluginManager("kagglesalt")
    pm.add_hookspecs(hookspecs)
    _broken, _loaded_dirs, _defaults_loaded = {}, set(), False


reset()


def _register_module(name: str, load: Callable[[], Any], source: str) -> None:
    if pm.has_plugin(name):
        return
    try:
        with quiet_native_stderr():  # a plugin importing TensorFlow must not flood the screen
            module = load()
        pm.register(module, name=name)
        module.__kagglesalt_source__ = source
    except (Exception, SystemExit, KeyboardInterrupt) as e:
        # A broken plugin must not take the CLI down, not even one that calls sys.exit
        # or raises KeyboardInterrupt as it is imported.
        _broken[name] = _reason(e)


def _reason(e: BaseException) -> str:
    if isinstance(e, SystemExit):
        return f"it called sys.exit({e.code!r})"
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def load_plugins(plugins_dir: str | os.PathLike | None = None) -> pluggy.PluginManager:
    """Register built-in plugins, entry points, and the `.py` files of `plugins_dir`."""
    global _defaults_loaded
    if not _defaults_loaded:
        _defaults_loaded = True
        for module in DEFAULT_PLUGINS:
            _register_module(module, partial(importlib.import_module, module), "built-in")
        if not os.environ.get("KAGGLESALT_NO_ENTRY_POINTS"):
            for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
                dist = ep.dist.name if ep.dist else "?"
                _register_module(ep.name, ep.load, f"entry point ({dist})")
    folder = plugins_dir or os.environ.get(PLUGINS_DIR_ENV)
    if folder:
        folder = Path(folder).resolve()
        if folder not in _loaded_dirs:
            _loaded_dirs.add(folder)
            for path in sorted(folder.glob("*.py")):
                _register_module(f"{folder.name}/{path.name}", partial(_import_file, path),
                                 f"plugins dir {folder}")
    return pm


def _import_file(path: Path) -> ModuleType:
    name = f"kagglesalt_workspace_plugin_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} cannot be imported as a module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _source(plugin: object) -> str:
    return getattr(plugin, "__kagglesalt_source__", "registered")


def models(plugins_dir: str | os.PathLike | None = None) -> dict[str, ModelSpec]:
    """Every registered model by name."""
    load_plugins(plugins_dir)
    found: dict[str, ModelSpec] = {}
    for impl in pm.hook.register_models.get_hookimpls():
        plugin_name = pm.get_name(impl.plugin) or impl.plugin_name

        def register(name: str, build: Callable[..., Any], description: str = "",
                     params: dict[str, Any] | None = None, learns_in: int = 0,
                     _plugin=impl.plugin, **defaults: Any) -> None:
            if name in found:  # refused, never silently replaced
                raise ValueError(f"model {name} is already registered by "
                                 f"{found[name].source}: give it another name")
            checked = {}
            for key, value in defaults.items():
                if key == "params":
                    raise ValueError(f"model {name}: give its parameters as params={{...}}")
                try:
                    checked[key] = settings.check(key, value)
                except ValueError as e:
                    raise ValueError(f"model {name}: default {e}") from None
            try:  # the defaults together: e.g. snapshots need the cosine schedule
                settings.resolve(checked, {}, params)
            except KaggleSaltError as e:
                raise ValueError(f"model {name}: defaults do not go together: {e}") from None
            if not isinstance(learns_in, int) or learns_in < 0:
                raise ValueError(f"model {name}: learns_in must be a number of epochs")
            found[name] = ModelSpec(name, build, description, _source(_plugin),
                                    dict(params or {}), checked, learns_in)

        try:
            impl.function(register=register)
        except (Exception, SystemExit, KeyboardInterrupt) as e:  # `kagglesalt models` says
            _broken[plugin_name] = _reason(e)
    return found


def get_model(name: str, plugins_dir: str | os.PathLike | None = None) -> ModelSpec:
    available = models(plugins_dir)
    if name not in available:
        broken = "".join(f"; plugin {plugin} is broken ({reason})"
                         for plugin, reason in _broken.items())
        raise KaggleSaltError(f"no model named '{name}': `kagglesalt models` lists "
                              f"{', '.join(sorted(available)) or 'none'}{broken}")
    return available[name]


def broken() -> dict[str, str]:
    """Plugins that failed to load or register, with the reason."""
    return dict(_broken)


def register_commands(cli: Any) -> None:
    load_plugins()
    for impl in pm.hook.register_commands.get_hookimpls():
        try:
            impl.function(cli=cli)
        except (Exception, SystemExit, KeyboardInterrupt) as e:
            _broken[pm.get_name(impl.plugin) or impl.plugin_name] = _reason(e)
