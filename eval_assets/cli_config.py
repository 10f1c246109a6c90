"""``evalgate config show``: the effective configuration, where each value came from, secrets masked."""

from __future__ import annotations

import argparse
import json
from typing import Any

from eval_assets.config import EffectiveConfig, env_names


def render_config(effective: EffectiveConfig) -> str:
    """The file read, the digest automation's runs are tagged with, and one row per setting: value and source.
    A secret shows as the variable that holds it and whether that is set, never its value."""
    from eval_assets.config_resources import config_digest

    rows = effective.shown()
    width = max(len(path) for path, _, _ in rows)
    value_width = min(48, max(len(value) for _, value, _ in rows))
    lines = [
        f"config file: {effective.file if effective.file else 'none (defaults and environment only)'}",
        f"digest: {config_digest(effective)}  (tag evalgate/config_digest on the runs automation launches)",
        "",
        f"{'setting':<{width}}  {'value':<{value_width}}  source",
    ]
    lines += [f"{path:<{width}}  {value:<{value_width}}  {source}" for path, value, source in rows]
    lines += [
        "",
        'environment: EVALGATE_<SECTION>__<FIELD> (e.g. EVALGATE_MODEL_RUNNER__BATCH_SIZE), README "Configuration"',
    ]
    return "\n".join(lines)


def config_as_json(effective: EffectiveConfig) -> dict[str, Any]:
    from eval_assets.config_resources import config_digest

    return {
        "file": str(effective.file) if effective.file else None,
        "digest": config_digest(effective),
        "settings": [
            {"setting": path, "value": value, "source": source, "env": env_names(path)}
            for path, value, source in effective.shown()
        ],
    }


def cmd_config_show(args: argparse.Namespace) -> int:
    from eval_assets.cli import _config

    effective = _config(args)
    print(json.dumps(config_as_json(effective), indent=2) if args.json else render_config(effective))
    return 0


def add_config_commands(sub: Any) -> None:
    config = sub.add_parser("config", help="the effective configuration").add_subparsers(
        dest="config_command", required=True
    )
    show = config.add_parser(
        "show", help="every setting's effective value and where it came from (flag, env, file, default)"
    )
    show.add_argument("--json", action="store_true", help="as JSON")
    show.add_argument("--profile", choices=["smoke", "full"], help="as `evaluate --profile` would set it")
    show.add_argument("--batch-size", type=int, help="as `evaluate --batch-size` would set it")
    show.set_defaults(func=cmd_config_show)
