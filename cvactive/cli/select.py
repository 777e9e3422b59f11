"""``cvactive select SCORES.jsonl|SHARDS/ --k K --strategy NAME [--labeled FILE] [--out FILE.jsonl]``.

A folder written by ``cvactive score --engine ray`` is read as columns and memmaps
(:mod:`cvactive.selection.columnar`): no box is loaded, ``uncertainty`` streams the image table.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cvactive.declare import add_flags
from cvactive.selection.options import SelectOptions

DEFAULT_CONFIG = "select.yaml"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "select",
        help="pick the batch of images/frames to label next from a scores file",
        description="Choose the k pool records to label next with a selection strategy (uncertainty, "
        "diversity, hybrid, class-aware ...). Options come from a YAML config (configs/select.yaml by "
        "default); flags override it. The output keeps each chosen record with its rank and utility.",
    )
    p.add_argument(
        "scores",
        nargs="?",
        help="JSON-lines scores file written by `cvactive score`, or the shards folder of `--engine ray`",
    )
    add_flags(p, SelectOptions)  # --strategy, --k, --seed: each overrides its config key
    p.add_argument("--labeled", help="JSON-lines records already labeled (matched by source/frame, never selected)")
    p.add_argument("--out", help="JSON-lines file for the chosen records (default: print a table only)")
    p.add_argument(
        "--error-model",
        help="add the expected errors of this predictor (the .npz cvactive errors fit writes) first; it is read as "
        "plain arrays and never unpickled (an old pickle .pkl is refused: re-create it with cvactive errors fit)",
    )
    p.add_argument("--config", help="YAML config (default: configs/select.yaml when present)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a strategy option, e.g. --set score=margin_max (repeatable; VALUE is read as YAML)",
    )
    p.add_argument(
        "--cost-budget",
        type=float,
        help="select until this expected annotation cost is spent, never more (boxes or seconds, see --cost-mode); "
        "--k then caps the number of images",
    )
    p.add_argument(
        "--cost-mode",
        choices=("boxes", "draw", "correct"),
        default="boxes",
        help="what the cost budget counts: boxes to draw, seconds to draw them, or seconds to correct the "
        "model's boxes (default: boxes)",
    )
    p.add_argument(
        "--per-cost",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="under a cost budget, rank the strategy's picks by utility per expected cost (default) or keep its "
        "own order (--no-per-cost)",
    )
    p.add_argument(
        "--order-key",
        help="frame order for uniform_time and temporal_window: a regex with groups (?P<seq>...) and "
        "(?P<frame>...) searched in each source, or field names FRAME or SEQ:FRAME (default: the record's "
        "frame / timestamp, else the last number of the file name)",
    )
    p.add_argument("--list", action="store_true", help="list the strategies with a one-line description and exit")
    p.set_defaults(func=run)


def _config(path: str | None) -> dict[str, Any]:
    """The select config, checked (a key renamed since is under its new name, with a warning)."""
    from cvactive._config import CONFIG_DIR
    from cvactive.config import load_config

    if path is not None:
        return load_config("select", path)
    default = CONFIG_DIR / DEFAULT_CONFIG
    return load_config("select", default) if default.is_file() else {}


def resolve_options(config: dict[str, Any], args: argparse.Namespace) -> tuple[str, int, int | None, dict[str, Any]]:
    """The strategy, k, seed and strategy options a run uses (config, then flags)."""
    from cvactive.declare import flag_values
    from cvactive.errors import ConfigError
    from cvactive.selection import get_strategy

    chosen = SelectOptions.of(config, **flag_values(args, SelectOptions))
    name = chosen.name
    strategy = get_strategy(name)
    if chosen.k is None and getattr(args, "cost_budget", None) is None:
        raise ConfigError("no k given: pass --k K (or --cost-budget B) or set k in the config")
    options = chosen.options_of(name)
    options.update(_overrides(args.overrides))
    if getattr(args, "order_key", None) is not None:
        _check_order_key(name)
        options["order_key"] = args.order_key
    strategy.check_options(options)
    return name, chosen.k or 0, chosen.seed, options


def _overrides(items: list[str]) -> dict[str, Any]:
    """The strategy options of ``--set KEY=VALUE`` (VALUE read as YAML)."""
    import yaml

    from cvactive.errors import ConfigError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            problem = getattr(err, "problem", None) or "not a YAML value"
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({problem})") from None
    return out


def _check_order_key(name: str) -> None:
    from cvactive.errors import ConfigError
    from cvactive.selection import STRATEGIES

    if "order_key" not in STRATEGIES[name].options:
        takes = [n for n, s in STRATEGIES.items() if "order_key" in s.options]
        raise ConfigError(
            f"--order-key: strategy {name!r} reads no frame order; strategies that do: {', '.join(takes)}"
        )


def print_list() -> None:
    from cvactive.selection import STRATEGIES, available_strategies

    width = max(len(n) for n in available_strategies())
    for name in available_strategies():
        s = STRATEGIES[name]
        mark = " [embeddings]" if s.needs_embeddings else ""
        mark += " [error model]" if s.needs_error_model else ""
        print(f"{name:<{width}}  {s.description}{mark}")


def run(args: argparse.Namespace) -> int:
    import warnings
    from dataclasses import replace

    from cvactive.errors import ConfigError
    from cvactive.io import load_jsonl, write_jsonl
    from cvactive.record import Selection
    from cvactive.selection import Pool, SelectionWarning, select

    if args.list:
        print_list()
        return 0
    if not args.scores:
        raise ConfigError("give a scores file (SCORES.jsonl), or --list to see the strategies")
    name, k, seed, options = resolve_options(_config(args.config), args)
    if args.out:  # before any work: never the pool (or another input) itself, never a folder
        from cvactive.outputs import check_file_output

        inputs = [p for p in (args.scores, args.labeled, args.error_model) if p]
        check_file_output(args.out, inputs=inputs)
    from cvactive.scale.shards import is_sharded

    if is_sharded(args.scores):
        return run_sharded(args, name, k, seed, options)
    records = load_jsonl(args.scores)
    if args.error_model:  # the fields learned_error ranks by
        from cvactive.errormodel import ErrorModel

        records = ErrorModel.load(args.error_model).attach(records)
    labeled = load_jsonl(args.labeled) if args.labeled else None
    pool = Pool.from_records(records)
    spent = ""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SelectionWarning)
        if args.cost_budget is not None:
            indices, utilities, spent = _select_within_budget(args, pool, name, k, seed, labeled, options)
        else:
            indices, utilities = select(pool, k, name, labeled=labeled, rng=seed, **options)
    for w in caught:
        print(f"warning: {w.message}")
    picks = [Selection(rank=rank, utility=round(float(u), 6), strategy=name) for rank, u in enumerate(utilities, 1)]
    chosen = [replace(records[i], selection=sel) for i, sel in zip(indices.tolist(), picks)]
    where = ""
    if args.out:
        write_jsonl(args.out, chosen, class_scores=True)  # whole or not at all
        where = f" -> {Path(args.out)}"
    lab_text = f", {len(labeled)} labeled records given" if labeled is not None else ""
    print(f"selected {len(chosen)} of {len(records)} records with {name!r}{lab_text}{where}{spent}")
    if options:
        print("  options: " + ", ".join(f"{key}={value}" for key, value in options.items()))
    for rec, sel in zip(chosen[:10], picks):
        print(f"  {sel.rank:>4}  {_value_label(name)} {sel.utility:.4f}  {rec.key}")
    if len(chosen) > 10:
        print(f"  ... {len(chosen) - 10} more")
    return 0


def _value_label(strategy: str) -> str:
    """What a pick's number is, as printed: ``random`` ranks by a uniform draw, not by a utility."""
    return "draw" if strategy == "random" else "utility"


def _select_within_budget(
    args: argparse.Namespace, pool: Any, name: str, k: int, seed: int | None, labeled: Any, options: dict[str, Any]
) -> tuple[Any, Any, str]:
    """Indices, utilities and the line saying what was spent, for ``--cost-budget``."""
    from cvactive.selection.costaware import select_within_budget

    within = select_within_budget(
        pool,
        args.cost_budget,
        name,
        cost_mode=args.cost_mode,
        per_cost=args.per_cost,
        max_items=k or None,
        labeled=labeled,
        rng=seed,
        **options,
    )
    unit = "boxes" if args.cost_mode == "boxes" else f"s to {args.cost_mode}"
    order = "utility per cost" if args.per_cost else "the strategy's order"
    return within.indices, within.utilities, f"\n  expected cost {within.spent:g} of {within.budget:g} {unit} ({order})"


def run_sharded(args: argparse.Namespace, name: str, k: int, seed: int | None, options: dict[str, Any]) -> int:
    """Select from a sharded scores folder (columns and memmaps; see :mod:`cvactive.selection.shards`)."""
    import warnings

    from cvactive.errors import ConfigError
    from cvactive.io import load_jsonl
    from cvactive.selection import SelectionWarning
    from cvactive.selection.shards import row_key, select_from_shards, write_rows

    if args.cost_budget is not None:
        raise ConfigError("--cost-budget needs a scores file (the boxes of every record), not a shards folder")
    labeled = load_jsonl(args.labeled) if args.labeled else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SelectionWarning)
        chosen = select_from_shards(args.scores, k, name, labeled=labeled, rng=seed, **options)
    for w in caught:
        print(f"warning: {w.message}")
    rows = chosen.rows
    where = ""
    if args.out:
        write_rows(args.out, rows)
        where = f" -> {Path(args.out)}"
    lab_text = f", {len(labeled)} labeled records given" if labeled is not None else ""
    print(f"selected {len(rows)} of {chosen.pool_size} records with {name!r} from shards{lab_text}{where}")
    if options:
        print("  options: " + ", ".join(f"{key}={value}" for key, value in options.items()))
    for row in rows[:10]:
        print(f"  {row['rank']:>4}  {_value_label(name)} {row['utility']:.4f}  {row.get('key') or row_key(row)}")
    if len(rows) > 10:
        print(f"  ... {len(rows) - 10} more")
    return 0
