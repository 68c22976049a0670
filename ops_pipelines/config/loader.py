"""Loading the YAML: `${VAR}` interpolation, `defaults:` merged into each database, duplicate keys
refused, and every validation error said in one line naming the file and the key, secrets masked.
"""

import os
import re
import typing
from pathlib import Path
from typing import Any

import yaml

try:  # libyaml's parser, which PyYAML's wheels include: a 500-database config parses in 0.1 s, not 1.3 s
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # PyYAML built without libyaml
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]
from psycopg.conninfo import conninfo_to_dict
from pydantic import (
    BaseModel,
    ValidationError,
)

from ops_pipelines.config.database import DatabaseSettings
from ops_pipelines.config.instance import REPORTS_FOLDER
from ops_pipelines.config.model import OpsConfig
from ops_pipelines.errors import ConfigError
from ops_pipelines.redact import mask_secrets

CONFIG_ENV_VAR = "OPS_PIPELINES_CONFIG"
DEMO_HINT = "run the demo with ./scripts/demo.sh, or point it at your YAML file (see README.md)"
_ENV_REF = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# Keys whose values are never echoed in an error message (any other echoed value is masked too).
_SECRET_KEYS = {"dsn", "scratch_dsn", "webhook_url", "password"}
# Errors about a whole section or list given as something else: its value is never echoed, it may
# be anything (a DSN pasted where the databases list goes, a webhook URL as the alerts section).
_SHAPE_ERRORS = {"model_type", "model_attributes_type", "dict_type", "list_type", "tuple_type"}


def load_config_from_env(environ: typing.Mapping[str, str] | None = None) -> OpsConfig:
    environ = os.environ if environ is None else environ
    path = environ.get(CONFIG_ENV_VAR, "").strip()
    if not path:
        raise ConfigError(f"{CONFIG_ENV_VAR} is not set, so there is nothing to manage: {DEMO_HINT}")
    return load_config(path, environ)


def load_config(path: str | Path, environ: typing.Mapping[str, str] | None = None) -> OpsConfig:
    path = Path(path)
    environ = os.environ if environ is None else environ
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from None
    return parse_config(text, environ, source=path)


def parse_config(text: str, environ: typing.Mapping[str, str], source: Path | str = "<config>") -> OpsConfig:
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{source}: {where}invalid YAML: {problem}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping with backup_store and databases at the top")
    raw = _interpolate(raw, environ, source, "")
    if isinstance(raw.get("defaults"), dict):
        # Checked alone first, so a bad default is reported once, under `defaults`.
        try:
            DatabaseSettings.model_validate(raw["defaults"])
        except ValidationError as exc:
            raise ConfigError(f"{source}: {_describe(exc, ['defaults'])}") from None
    raw = _apply_defaults(raw)
    try:
        config = OpsConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_describe(exc)}") from None
    _check_unique(config, source)
    return config.model_copy(update={"source": Path(source)})


class _UniqueKeyLoader(_SafeLoader):  # pyright: ignore[reportGeneralTypeIssues] (libyaml has no stubs)
    """PyYAML keeps the last of two equal keys silently; a config must not."""

    def construct_mapping(self, node, deep=False):  # type: ignore[override]
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f'duplicate key "{key}"', key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def launchpad_dsn(raw: str, where: str, environ: typing.Mapping[str, str] | None = None) -> str:
    """A DSN typed into a launchpad: Dagster stores the run's config as typed (and shows it in the UI),
    so a password written in it is refused; `${VAR}` is expanded here, in the run, from the environment
    (the whole DSN, or just its password)."""
    if not raw:
        return raw
    try:
        typed = conninfo_to_dict(raw)
    except Exception:  # noqa: BLE001 - `${VAR}` standing for the whole DSN does not parse before expansion
        typed = {}
    password = str(typed.get("password") or "")
    if password and not re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}", password):
        raise ConfigError(
            f"{where} holds a password, which the run's config would keep in plain text: write it as "
            "${VAR} (read from the run's environment), or leave it out and use ~/.pgpass or PGPASSWORD"
        )
    expanded = _interpolate(raw, environ if environ is not None else os.environ, "launchpad", where)
    try:
        conninfo_to_dict(expanded)
    except Exception as exc:  # noqa: BLE001 - psycopg's message may quote the DSN: only its type is said
        raise ConfigError(f"{where}: not a libpq connection string or URI ({type(exc).__name__})") from None
    return expanded


def _interpolate(value: Any, environ: typing.Mapping[str, str], source: Any, where: str) -> Any:
    """Replace `${VAR}` / `${VAR:-default}` in every string; `$$` is a literal `$`."""
    if isinstance(value, dict):
        return {k: _interpolate(v, environ, source, _join(where, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, environ, source, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name in environ and environ[name] != "":
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(f"{source}: {where}: environment variable {name} is not set")

    return _ENV_REF.sub(substitute, value)


def _apply_defaults(raw: dict[str, Any]) -> dict[str, Any]:
    defaults = raw.get("defaults")
    databases = raw.get("databases")
    if not isinstance(defaults, dict) or not isinstance(databases, list):
        return raw
    merged = [_deep_merge(defaults, db) if isinstance(db, dict) else db for db in databases]
    return {**raw, "databases": merged}


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _deep_merge(result[key], value)
        else:
            result[key] = value
    return result


def _check_unique(config: OpsConfig, source: Any) -> None:
    _refuse_duplicates([db.name for db in config.databases], "databases", "database name", source)
    for i, db in enumerate(config.databases):
        if db.name == REPORTS_FOLDER:
            raise ConfigError(
                f'{source}: databases[{i}].name: "{REPORTS_FOLDER}" is reserved for the reports folder of the backup '
                "store"
            )
    for i, db in enumerate(config.databases):
        _refuse_duplicates([rule.name for rule in db.archive], f"databases[{i}].archive", "archive rule", source)


def _refuse_duplicates(names: list[str], where: str, what: str, source: Any) -> None:
    first_seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in first_seen:
            raise ConfigError(
                f'{source}: {where}[{i}].name: duplicate {what} "{name}" (also {where}[{first_seen[name]}])'
            )
        first_seen[name] = i


def _join(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def _describe(exc: ValidationError, prefix: list[Any] | None = None) -> str:
    """The first problem as `key.path: what is wrong`, one line, secrets never echoed."""
    errors = exc.errors()
    error = errors[0]
    loc = (prefix or []) + [part for part in error["loc"] if not _is_union_tag(part)]
    where = ""
    for part in loc:
        where = f"{where}[{part}]" if isinstance(part, int) else _join(where, part)
    message = re.sub(r"^(Value error|Assertion failed), ", "", error["msg"])
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        message = "unknown key" + (f" (allowed here: {', '.join(allowed)})" if allowed else "")
    elif kind == "missing":
        message = "required key is missing"
    elif kind == "too_short" and loc == ["databases"]:
        message = "list at least one database"
    elif kind in _SHAPE_ERRORS:
        wanted = "a list" if kind in {"list_type", "tuple_type"} else "a mapping of keys to values"
        message = f"expected {wanted}, got {_kind_of(error.get('input'))}"
    elif kind not in {"value_error", "assertion_error"} and not (_SECRET_KEYS & set(map(str, loc))):
        shown = error.get("input")
        message = f"{message}, got {shown!r}" if isinstance(shown, (str, int, float, bool)) else message
    more = f" (and {len(errors) - 1} more, shown after this one is fixed)" if len(errors) > 1 else ""
    return mask_secrets(f"{where or 'top level'}: {message}{more}")


def _kind_of(value: Any) -> str:
    """What a value is, without showing it."""
    return {
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "true/false",
        list: "a list",
        dict: "a mapping",
        type(None): "nothing",
    }.get(type(value), type(value).__name__)


def _is_union_tag(part: Any) -> bool:
    # pydantic adds the member type's name to the location inside unions ("str", "function-after[...]")
    return isinstance(part, str) and ("[" in part or part in {"str", "int", "float", "bool"})


def _allowed_keys(loc: list[Any]) -> list[str]:
    model: Any = OpsConfig
    if loc[:1] == ["defaults"]:
        model, loc = DatabaseSettings, loc[1:]
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if model else None
        model = _inner_model(field.annotation) if field else None
        if model is None:
            return []
    return [f.alias or name for name, f in model.model_fields.items() if not f.exclude]


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _inner_model(arg)
        if found:
            return found
    return None
