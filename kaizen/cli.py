"""The ``kaizen`` command. Thin: each subcommand parses, delegates, prints.

Only :class:`~kaizen.errors.KaizenError` is caught here, to print one clear
line (credentials redacted) and exit with the error's code (78 for a bad
config or policy file, 75 for a held lock, 1 otherwise; see kaizen/errors.py).
Anything else is a bug: its traceback is printed, redacted, and the exit code
is 1. Heavy libraries (MLflow, Evidently, featuretools, Optuna) are imported
only by the subcommands that need them, so ``kaizen --help``, ``kaizen log``
and ``kaizen policy validate`` stay quick.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from kaizen._env import prepare
from kaizen.errors import EXIT_FAILURE, BusyError, KaizenError, PolicyError
from kaizen.redact import redact, redact_obj

__all__ = ["main"]


def _config(args: argparse.Namespace) -> Any:
    from kaizen.config import load_config

    cfg = load_config(args.config)
    prepare(cfg.threads)
    return cfg


def _policy_path(cfg: Any, ref: str) -> Path:
    """POLICY may be a file path or a model name / file stem in the policies folder."""
    p = Path(ref)
    if p.suffix == ".toml" or p.exists():
        return p
    from kaizen.policy import load_policies, policy_files

    files = policy_files(cfg.policies_dir)
    for f in files:
        if f.stem == ref:
            return f
    good, _ = load_policies(files)
    for pol in good:
        if pol.name == ref:
            return pol.path
    raise KaizenError(f"no policy named {ref!r} in {cfg.policies_dir}")


# -- subcommands ----------------------------------------------------------------------------------

def cmd_validate(args: argparse.Namespace) -> int:
    from kaizen.policy import load_policies, policy_files

    cfg = _config(args)
    files = [Path(f) for f in args.files] or policy_files(cfg.policies_dir)
    if not files:
        print(f"no policy files in {cfg.policies_dir}", file=sys.stderr)
        return 1
    good, bad = load_policies(files)
    from kaizen.policy_check import check_data

    failed = bool(bad)
    for p in good:
        found = check_data(p)  # the data it names: reference, golden, production, drift methods per column
        if found.ok:
            print(f"ok    {p.path}  ({p.name}: {p.model.task}, metric {p.model.metric}, "
                  f"promotion {p.promotion.mode})")
        failed = failed or not found.ok
        for line in found.problems:
            print(f"error {redact(line)}", file=sys.stderr)
        for line in found.warnings:
            print(f"warn  {redact(line)}", file=sys.stderr)
        for line in found.notes:
            print(f"note  {redact(line)}")
    for e in bad:
        for line in str(e).splitlines():
            print(f"error {redact(line)}", file=sys.stderr)
    return 1 if failed else 0


def _load_policy_or_record(cfg: Any, ref: str, seed: int | None) -> Any:
    """A policy that does not load still leaves a skipped cycle in the log."""
    from kaizen.ledger import Record, new_cycle_id
    from kaizen.policy import load_policy
    from kaizen.run.backend import ledger_for

    path = _policy_path(cfg, ref)
    try:
        return load_policy(path)
    except PolicyError as exc:
        name = path.stem
        ledger_for(cfg).append(Record(
            id=new_cycle_id(name), policy=name, decision="skipped", seed=seed,
            reasons=tuple(f"policy not valid: {p}" for p in exc.problems), error=str(exc)))
        raise


def cmd_policy_tune(args: argparse.Namespace) -> int:
    cfg = _config(args)
    from kaizen.policy import load_policy

    policy = load_policy(_policy_path(cfg, args.policy))
    from kaizen.backtest.tune import tune_policy
    from kaizen.backtest.tune_report import tune_table

    out = Path(args.out) if args.out else Path(f"{policy.path.stem}.tuned.toml")
    result = tune_policy(policy, Path(args.batches), config=cfg, trials=args.trials, seed=args.seed,
                         holdout_fraction=args.holdout, out=out, plot=Path(args.plot) if args.plot else None,
                         max_work_ratio=args.max_work_ratio, progress=not args.no_progress)
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
    print(tune_table(result))
    for line in result["validation"]["warnings"]:
        print(f"warn  {redact(line)}", file=sys.stderr)
    for label, path in (("policy", out), ("plot", args.plot), ("json", args.json)):
        if path:
            print(f"{label}: {path}")
    return 0


def cmd_bootstrap(args: argparse.Namespace) -> int:
    cfg = _config(args)
    from kaizen.policy import load_policy

    policy = load_policy(_policy_path(cfg, args.policy))
    from kaizen.commands.bootstrap import bootstrap
    from kaizen.ui.progress import StepLine

    with StepLine(journal=(cfg.state_dir, policy.name)):  # bootstrap takes no on_step: follow its journal entry
        rec = bootstrap(cfg, policy, seed=args.seed, force=args.force, wait_seconds=args.wait)
    _print_record(rec)
    return 0 if rec.decision == "promoted" else 1


def cmd_once(args: argparse.Namespace) -> int:
    cfg = _config(args)
    refs = args.policies
    if not refs:
        from kaizen.policy import policy_files

        refs = [str(f) for f in policy_files(cfg.policies_dir)]
        if not refs:
            raise KaizenError(f"no policy files in {cfg.policies_dir}")
    from kaizen.commands.tick import tick

    status = 0
    for ref in refs:
        try:
            policy = _load_policy_or_record(cfg, ref, args.seed)
        except PolicyError as exc:
            print(f"skipped: {redact(str(exc))}", file=sys.stderr)
            status = exc.exit_code
            continue
        try:
            from kaizen.ui.progress import StepLine

            with StepLine() as progress:
                rec = tick(cfg, policy, seed=args.seed, wait_seconds=args.wait, on_step=progress.on_step)
        except BusyError as exc:
            print(f"kaizen: {exc}", file=sys.stderr)
            status = status or BusyError.exit_code
            continue
        _print_record(rec)
        status = status or (1 if rec.decision == "failed" else 0)
    return status


def cmd_backtest(args: argparse.Namespace) -> int:
    cfg = _config(args)
    from kaizen.policy import load_policy

    policy = load_policy(_policy_path(cfg, args.policy))
    from kaizen.backtest import plot, run_backtest, summary_table

    result = run_backtest(policy, Path(args.batches), config=cfg, seed=args.seed, progress=not args.no_progress,
                          approve_after=None if args.approve_after == "never" else int(args.approve_after),
                          peers=args.peers)
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
    if args.plot:
        plot(result, Path(args.plot))
    print(summary_table(result))
    for label, path in (("json", args.json), ("plot", args.plot)):
        if path:
            print(f"{label}: {path}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    cfg = _config(args)
    from kaizen.service.logs import configure_service_logging

    configure_service_logging(cfg.service.log_format, cfg.service.log_level)
    from kaizen.service.daemon import Service

    return Service(cfg).run()


def _coordination(cfg: Any, what: str) -> str:
    url = cfg.coordination.url
    if not url:
        from kaizen.errors import ConfigError

        raise ConfigError(f"{cfg.path or 'config.toml'}: `kaizen {what}` needs [coordination] url (or url_env): a "
                          "PostgreSQL database for the scale-out path (docs/scale-out.md)")
    return url


def cmd_worker(args: argparse.Namespace) -> int:
    cfg = _config(args)
    _coordination(cfg, "worker")
    from kaizen.service.logs import configure_service_logging

    configure_service_logging(cfg.service.log_format, cfg.service.log_level)
    if args.tune:  # distributed tuning: join the cycles' running searches instead of taking cycles
        from kaizen.scale.tuning import run_tuner

        return run_tuner(cfg, wait=not args.once)
    from kaizen.scale.outbox import sending
    from kaizen.scale.worker import run_worker

    with sending(cfg):  # this worker also delivers the webhooks' outbox (kaizen/scale/outbox.py)
        run_worker(cfg, config_path=Path(args.config or os.environ.get("KAIZEN_CONFIG", "config.toml")),
                   concurrency=args.concurrency or cfg.coordination.worker_concurrency, wait=not args.once,
                   name=args.name)
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """Kaizen's schema, procrastinate's, MLflow's and Optuna's: one step, run once before anything starts."""
    cfg = _config(args)
    from kaizen.scale.db import upgrade

    if cfg.ledger_url and not cfg.coordination.url:  # the embedded path with the promotion log in PostgreSQL
        print(f"kaizen schema (promotion log): version {upgrade(cfg.ledger_url)} at {redact(cfg.ledger_url)}")
        return 0
    url = _coordination(cfg, "db upgrade")
    from kaizen.scale.queue import schema

    print(f"kaizen schema: version {upgrade(url)} at {redact(url)}")
    if cfg.ledger_url and cfg.ledger_url != url:  # the promotion log in a database of its own ([ledger] url)
        print(f"kaizen schema (promotion log): version {upgrade(cfg.ledger_url)} at {redact(cfg.ledger_url)}")
    print(f"job queue (procrastinate): {'created' if schema(url) else 'already there'}")
    if args.mlflow_backend_store_uri:
        import subprocess

        done = subprocess.run([sys.executable, "-m", "mlflow", "db", "upgrade", args.mlflow_backend_store_uri],
                              capture_output=True, text=True)
        if done.returncode != 0:
            from kaizen.errors import KaizenError

            raise KaizenError("mlflow db upgrade failed: " + redact(done.stderr.strip().splitlines()[-1]
                                                                      if done.stderr.strip() else "no output"))
        print(f"mlflow: migrated {redact(args.mlflow_backend_store_uri)}")
    if cfg.coordination.optuna_storage:
        from kaizen.scale.tuning import create_storage

        create_storage(cfg.coordination.optuna_storage)
        print(f"optuna: storage ready at {redact(cfg.coordination.optuna_storage)}")
    return 0


def _reading(args: argparse.Namespace) -> Any:
    """The config of a command that only reads the state (log, show, status, history).

    Without a config.toml (none here, none named by ``--config`` or ``$KAIZEN_CONFIG``) the defaults point
    at ``./.kaizen``: when that folder does not exist either, this is the wrong folder, and saying so beats
    printing an empty log; when it does, stderr says which state folder is read.
    """
    from kaizen.config import load_config

    cfg = load_config(args.config)
    if cfg.path is None:
        if not cfg.state_dir.exists() and not cfg.ledger_url:
            raise KaizenError(f"no config.toml in {Path.cwd()} (and $KAIZEN_CONFIG is not set), and no state folder "
                              f"{cfg.state_dir}: run kaizen in the project folder or give --config PATH")
        print(f"kaizen: no config.toml in {Path.cwd()}: reading the state folder {cfg.state_dir} (the defaults)",
              file=sys.stderr)
    return cfg


def cmd_status(args: argparse.Namespace) -> int:
    from kaizen.status import collect, render

    st = redact_obj(collect(_reading(args)))  # last errors may quote a URI with its password
    print(json.dumps(st, indent=2) if args.json else render(st))
    return 0


def cmd_log(args: argparse.Namespace) -> int:
    from kaizen.run.backend import log_view_for
    from kaizen.ui import text
    from kaizen.ui.logview import Query, parse_when

    cfg = _reading(args)
    query = Query(policy=args.policy, decisions=tuple(dict.fromkeys(args.decision or ())),
                  since=parse_when(args.since, what="--since") if args.since else None,
                  until=parse_when(args.until, end=True, what="--until") if args.until else None)
    view = log_view_for(cfg)
    snap = view.snapshot()
    rows = query.apply(snap.rows)
    tty = not (args.json or args.csv) and sys.stdout.isatty()
    last = args.last or (text.TTY_ROWS if tty else 0)
    shown = rows[-last:] if last else rows
    width = args.width or (shutil.get_terminal_size().columns if tty else None)  # a pipe: one line per record
    stale = snap.stale
    try:
        if args.json:
            sys.stdout.flush()
            sys.stdout.buffer.writelines(line + b"\n" for line in view.raw_lines(shown))
        elif args.csv:
            sys.stdout.write(text.render_csv(shown, snap.resolved, _expired(cfg, snap.waiting()), stale))
        elif not shown:
            print(f"the promotion log is empty ({view.path})" if not snap.rows else
                  f"no record matches ({len(snap.rows)} in {view.path})")
        elif tty and len(shown) <= text.RICH_MAX_ROWS:
            text.render_rich(shown, snap.resolved, sys.stdout, _expired(cfg, snap.waiting()), stale, width=width)
        else:
            print(text.render_plain(shown, snap.resolved, _expired(cfg, snap.waiting()), stale, width=width))
        sys.stdout.flush()
    except BrokenPipeError:  # `kaizen log | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    if len(shown) < len(rows) and not args.last and not (args.json or args.csv):
        print(f"(the newest {len(shown)} of {len(rows)} records; --last N shows more, a pipe shows all)",
              file=sys.stderr)
    if snap.skipped:
        print(f"({snap.skipped} unreadable line(s) in {view.path} skipped)", file=sys.stderr)
    return 0


def _expired(cfg: Any, waiting: list[Any]) -> set[str]:
    """The ids of ``waiting`` (unanswered approvals) past their policy's ``approval_expires``."""
    if not waiting:
        return set()
    from kaizen.commands.review import expired

    return expired(cfg, waiting)


def cmd_show(args: argparse.Namespace) -> int:
    from kaizen.run.backend import log_view_for
    from kaizen.ui.logview import match_id

    cfg = _reading(args)
    view = log_view_for(cfg)
    snap = view.snapshot()
    row = snap.by_id.get(match_id(snap.by_id, args.id))
    rec = view.record(row) if row is not None else None
    if rec is None:
        raise KaizenError(f"no record {args.id!r} in the promotion log")
    if args.json:
        print(json.dumps(rec.to_dict(), indent=2))
    else:
        from kaizen.ui.text import print_record

        print_record(rec, full=True, answer=snap.resolved.get(rec.id), stale=snap.stale.get(rec.id))
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    cfg = _config(args)
    from kaizen.logs import configure

    configure(logging.INFO)
    from kaizen.ui.server import UIServer

    try:
        server = UIServer(cfg, host=args.host, port=args.port)
    except OSError as exc:
        raise KaizenError(f"cannot serve the review pages on {args.host or cfg.ui.host}:"
                          f"{cfg.ui.port if args.port is None else args.port}: {exc.strerror or exc}") from exc
    print(f"kaizen ui: {server.url}/ ({server.mode}; Ctrl-C stops)", flush=True)
    server.serve_forever()
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    cfg = _config(args)
    from kaizen.commands.review import approve

    _print_record(approve(cfg, args.id, actor=args.by, wait_seconds=args.wait, comment=args.comment or ""))
    return 0


def cmd_reject(args: argparse.Namespace) -> int:
    cfg = _config(args)
    from kaizen.commands.review import reject

    _print_record(reject(cfg, args.id, actor=args.by, comment=args.comment or "", wait_seconds=args.wait))
    return 0


def _model(cfg: Any, ref: str) -> tuple[str, Any]:
    """(model name, its policy or None): POLICY as for the other commands, or a model name with no policy file."""
    from kaizen.policy import load_policy

    try:
        policy = load_policy(_policy_path(cfg, ref))
    except KaizenError:
        if Path(ref).suffix == ".toml" or Path(ref).exists():
            raise
        return ref, None  # a model whose policy file is gone or broken can still be rolled back and read
    return policy.name, policy


def cmd_rollback(args: argparse.Namespace) -> int:
    cfg = _config(args)
    name, policy = _model(cfg, args.policy)
    from kaizen.commands.rollback import rollback

    rec = rollback(cfg, name, to=args.to, reason=args.reason or "", actor=args.by, force=args.force,
                   wait_seconds=args.wait, metric=policy.model.metric if policy else "")
    _print_record(rec)
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from kaizen.config import load_config
    from kaizen.registry.history import champion_periods, render_history
    from kaizen.run.backend import ledger_for

    cfg = load_config(args.config)
    name, _ = _model(cfg, args.policy)
    current, note = None, None
    try:
        from kaizen.registry import Registry, reaching

        with reaching(cfg.tracking_uri, cfg.registry_uri):
            champ = Registry.from_config(cfg).champion(name)
        current = champ.version if champ else None
    except KaizenError as exc:  # the log alone still answers; say what could not be checked, and exit 1
        note = f"the registry's current @champion could not be read: {exc}"
    ledger = ledger_for(cfg)
    periods = champion_periods(ledger.records(), name, current=current)
    if args.json:
        print(json.dumps([p.to_dict() for p in periods], indent=2))
    elif periods:
        print(redact(render_history(periods)))
    else:
        print(f"no champion of {name!r} in the promotion log ({ledger.path})")
    if note:
        print(f"kaizen: error: {' '.join(redact(note).split())}", file=sys.stderr)
        return EXIT_FAILURE
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    cfg = _config(args)
    from kaizen.commands.retention import describe, run
    from kaizen.registry import Registry, reaching

    with reaching(cfg.tracking_uri, cfg.registry_uri):
        registry = Registry.from_config(cfg)
    plan, result = run(cfg, registry, dry_run=args.dry_run)
    if args.json:
        doc = {"dry_run": args.dry_run, "plan": plan.to_dict(), "result": result.to_dict() if result else None}
        print(redact(json.dumps(doc, indent=2)))
    else:
        for line in describe(plan, result):
            print(redact(line))
    return 1 if result is not None and result.failed else 0


# -- printing -------------------------------------------------------------------------------------

def _print_record(rec: Any, full: bool = False) -> None:
    from kaizen.ui.text import print_record

    print_record(rec, full=full)


# -- entry point ----------------------------------------------------------------------------------

def _approve_after(value: str) -> str:
    if value == "never" or (value.isdigit() and int(value) >= 0):
        return value
    raise argparse.ArgumentTypeError(f"must be an integer >= 0 or 'never'; got {value!r}")


def _peers(value: str) -> tuple[str, ...]:
    """``--peers``: a comma list of peer names, ``river`` meaning every river peer."""
    from kaizen.backtest.peers import ALIASES, PEERS, peer_names

    try:
        return peer_names(n.strip() for n in value.split(",") if n.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a comma list of {', '.join((*ALIASES, *PEERS))}; "
                                         f"got {value!r}") from None


def _at_least(low: int) -> Any:
    """An argparse type: an integer >= ``low``."""
    def parse(value: str) -> int:
        if value.isdigit() and int(value) >= low:
            return int(value)
        raise argparse.ArgumentTypeError(f"must be an integer >= {low}; got {value!r}")

    return parse


_at_least_one = _at_least(1)


def _number(lo: float, hi: float | None, allowed: str) -> Any:
    """An argparse type: a number ``lo < v < hi`` (``hi`` None: ``v >= lo``)."""
    def parse(value: str) -> float:
        try:
            v = float(value)
        except ValueError:
            v = float("nan")
        if (lo < v < hi) if hi is not None else v >= lo:
            return v
        raise argparse.ArgumentTypeError(f"must be {allowed}; got {value!r}")

    return parse


_fraction = _number(0.0, 1.0, "a number in (0, 1)")
_ratio = _number(0.0, None, "a number >= 0")


def _wait_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="if another kaizen process is working on the policy, wait up to this long for it "
                   "(default: refuse at once, exit 75)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kaizen", description="Keeps production ML models improving: monitor, "
                                "decide, build a challenger, gate it, promote it, and log why.")
    p.add_argument("--config", help=CONFIG_HELP)
    p.add_argument("--version", action="version", version=f"kaizen {_installed_version()}",
                   help="print Kaizen's version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    pol = sub.add_parser("policy", help="work with policy files")
    polsub = pol.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    v = polsub.add_parser("validate", help="check policy files and the data they name (no training); "
                          "exit 1 listing every error")
    v.add_argument("files", nargs="*", help="policy files (default: every *.toml in the policies folder)")
    v.set_defaults(func=cmd_validate)
    tu = polsub.add_parser("tune", help="let past batches choose the policy's trigger, window, holdout and ladder "
                           "settings (an Optuna study of backtests); write the chosen policy file",
                           description="Split the batches in time order: an Optuna multi-objective study tunes the "
                           "policy's trigger, window, holdout and ladder settings on the first part (each trial a "
                           "backtest of the policy alone: mean prequential metric vs build work), the last part is "
                           "held out. The policy as written and the chosen Pareto-front member are then replayed on "
                           "the held-out part; the chosen values are written only if they do not score worse there. "
                           "The file written is the original with only the tuned values changed. See "
                           "docs/policy-tuning.md.")
    tu.add_argument("policy", help="policy file or model name")
    tu.add_argument("--batches", required=True, metavar="DIR", help="folder of past batch files (.parquet/.csv)")
    tu.add_argument("--trials", type=_at_least_one, default=20, metavar="N",
                    help="backtests in the study, the policy as written first (default 20)")
    tu.add_argument("--seed", type=int, help="the study's and the backtests' seed (default build.seed); the same "
                    "seed gives the same front")
    tu.add_argument("--holdout", type=_fraction, default=0.5, metavar="FRACTION",
                    help="share of the batches, the newest, held out from the tuning (default 0.5)")
    tu.add_argument("--max-work-ratio", type=_ratio, default=None, metavar="R",
                    help="choose only among front members whose build work is at most R x the policy's own "
                    "(default: any; the best metric)")
    tu.add_argument("--out", metavar="PATH.toml", help="where the chosen policy is written (default: "
                    "STEM.tuned.toml in the current folder; never the policy file itself)")
    tu.add_argument("--plot", metavar="PATH.png", help="a PNG of every trial: metric vs build work and CPU")
    tu.add_argument("--json", metavar="PATH", help="write the full result as JSON (docs/policy-tuning.md)")
    tu.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    tu.set_defaults(func=cmd_policy_tune)

    b = sub.add_parser("bootstrap", help="build the first champion from the reference data")
    b.add_argument("policy", help="policy file or model name")
    b.add_argument("--force", action="store_true", help="replace an existing champion")
    b.add_argument("--seed", type=int, help="override build.seed")
    _wait_flag(b)
    b.set_defaults(func=cmd_bootstrap)

    o = sub.add_parser("once", help="run one improvement cycle now and print the decision")
    o.add_argument("policies", nargs="*", metavar="POLICY", help="policy files or model names (default: all)")
    o.add_argument("--seed", type=int, help="override build.seed")
    _wait_flag(o)
    o.set_defaults(func=cmd_once)

    bt = sub.add_parser("backtest", help="replay past batches through a policy and three baselines, in isolation",
                        description="Replay a folder of past production batches (features + labels) in order: each "
                        "batch is first scored by the champion serving at that moment, then joins the window and the "
                        "policy's cycle runs. Baselines: static (never retrained), refit_every_batch (the bootstrap "
                        "recipe refit each batch, no search) and retrain_every_batch (a full search each batch). "
                        "Runs in a "
                        "temporary state; the live registry and promotion log are never touched.")
    bt.add_argument("policy", help="policy file or model name")
    bt.add_argument("--batches", required=True, metavar="DIR", help="folder of past batch files (.parquet/.csv)")
    bt.add_argument("--json", metavar="OUT", help="write the full result as JSON (see docs/backtest.md)")
    bt.add_argument("--plot", metavar="OUT.png", help="write a PNG: metric per batch, promotions, drift share")
    bt.add_argument("--seed", type=int, help="override build.seed (a seeded backtest repeats exactly)")
    bt.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    bt.add_argument("--approve-after", default="1", metavar="N|never", type=_approve_after,
                    help="a challenger left awaiting approval is approved by a simulated person once N more batches "
                    "were served by the old champion (default 1; 0: at once); 'never': nobody answers")
    bt.add_argument("--peers", type=_peers, default=(), metavar="NAMES",
                    help="also replay streaming learners as arms, scored the same way: 'river' (river_arf and "
                    "river_logreg) or a comma list of those names; needs pip install 'kaizen[river]'")
    bt.set_defaults(func=cmd_backtest)

    rn = sub.add_parser("run", help="run the service in the foreground: every policy on its schedule",
                        description="Run the Kaizen service in the foreground (as systemd, Docker and Kubernetes "
                        "expect): schedules every policy, recovers interrupted cycles, serves /healthz, /readyz "
                        "and /metrics. SIGTERM/SIGINT stop gracefully (a second one aborts); SIGHUP reloads the "
                        "policies. See docs/service.md.")
    rn.set_defaults(func=cmd_run)

    wk = sub.add_parser("worker", help="scale-out: run cycles from the PostgreSQL job queue (docs/scale-out.md)",
                        description="Take cycles from the queue the leading `kaizen run` fills ([coordination] "
                        "url), each in a child process of a fork server that imported the ML stack once, killed at "
                        "[coordination] cycle_deadline_seconds. SIGTERM stops taking jobs and waits for the running "
                        "ones. See docs/scale-out.md.")
    wk.add_argument("--concurrency", type=int, default=None, metavar="N",
                    help="cycles at once (default [coordination] worker_concurrency)")
    wk.add_argument("--once", action="store_true", help="stop when the queue is empty")
    wk.add_argument("--name", default=None, help="this worker's name in logs and the queue")
    wk.add_argument("--tune", action="store_true",
                    help="join the cycles' running Optuna searches ([coordination] optuna_storage) instead of "
                    "taking cycles; with --once, stop when no search is open")
    wk.set_defaults(func=cmd_worker)

    db = sub.add_parser("db", help="scale-out: the databases Kaizen uses")
    dbsub = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    up = dbsub.add_parser("upgrade", help="create or migrate Kaizen's schema and its job queue (and MLflow's, "
                          "Optuna's): one step, before any server or worker starts")
    up.add_argument("--mlflow-backend-store-uri", default=os.environ.get("MLFLOW_BACKEND_STORE_URI") or None,
                    metavar="URI", help="also run `mlflow db upgrade URI` for the MLflow server's own database "
                    "(default $MLFLOW_BACKEND_STORE_URI, the variable `mlflow server` reads: a password stays out "
                    "of the command line)")
    up.set_defaults(func=cmd_db_upgrade)

    st = sub.add_parser("status", help="per policy: next run, champion, last decision and error (quick)",
                        description="Per policy: its health, schedule and next run, the champion and since when, the "
                        "last decision and the last error; and whether the daemon runs. Reads the policy files, the "
                        "promotion log, the job store and the daemon's status file; imports no ML library.")
    st.add_argument("--json", action="store_true", help="the same as one JSON document")
    st.set_defaults(func=cmd_status)

    from kaizen.ledger import DECISIONS

    lg = sub.add_parser("log", help="print the promotion log",
                        description="Print the promotion log, oldest first: a table (drawn by rich on a terminal, "
                        "where only the newest 50 records are shown unless --last says otherwise; plain aligned "
                        "text when piped), --json (each record as written) or --csv. Filters combine.")
    fmt = lg.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="one JSON record per line, as written in the log")
    fmt.add_argument("--csv", action="store_true", help="one CSV row per record (numbers unrounded)")
    lg.add_argument("--policy", help="only this model's records")
    lg.add_argument("--decision", action="append", choices=DECISIONS, metavar="DECISION",
                    help=f"only records with this decision (repeatable; one of {', '.join(DECISIONS)})")
    lg.add_argument("--since", metavar="WHEN", help="only records at or after WHEN (ISO date or time, UTC unless "
                    "it has an offset: 2026-11-26, 2026-11-26T14:00)")
    lg.add_argument("--until", metavar="WHEN", help="only records at or before WHEN (a date counts whole)")
    lg.add_argument("--last", type=int, metavar="N", help="only the newest N records (after the filters)")
    lg.add_argument("--width", type=_at_least(40), metavar="COLUMNS",
                    help="fit the table to this many columns (default: the terminal's width; piped: one line per "
                    "record). Cells wrap, and the least needed columns are dropped; the id is never cut")
    lg.set_defaults(func=cmd_log)

    sh = sub.add_parser("show", help="print one record of the promotion log in full",
                        description="Print one record in full: its reasons, the champion's and the challenger's "
                        "holdout numbers (the best rung's when no rung passed, and every rung), each gate, the cost, "
                        "the MLflow run, the report and, for an approval, who answered it and how.")
    sh.add_argument("id", help="the record's id, or a unique prefix of it")
    sh.add_argument("--json", action="store_true", help="the record as written in the log (JSON)")
    sh.set_defaults(func=cmd_show)

    ui = sub.add_parser("ui", help="serve the review pages (overview, decisions, approve/reject) in a browser",
                        description="Serve the review pages: each policy's champion and chart, the decisions with "
                        "filters, each decision in full with its Evidently report, and approve/reject forms when "
                        "[ui] token_env names a variable holding a token (else read-only). Bound to [ui] host "
                        "(127.0.0.1) by default. See docs/ui.md.")
    ui.add_argument("--host", help="address to bind (default: [ui] host, 127.0.0.1)")
    ui.add_argument("--port", type=int, help="port (default: [ui] port, 9467; 0 picks a free one)")
    ui.set_defaults(func=cmd_ui)

    a = sub.add_parser("approve", help="promote a challenger that awaits approval",
                       description="Promote the challenger of an awaiting_approval record, through the policy's "
                       "lock, with one record of kind approval. Refused when it was answered, superseded (a newer "
                       "challenger awaits approval, or the champion changed since), or expired. The other open "
                       "approvals of the policy are then closed as superseded.")
    a.add_argument("id", help="the cycle id of the awaiting_approval record, or a unique prefix of it")
    a.add_argument("--by", help="who approves (default: the current user)")
    a.add_argument("--comment", metavar="TEXT", help="a comment for the log (kept in the approval's record)")
    _wait_flag(a)
    a.set_defaults(func=cmd_approve)

    r = sub.add_parser("reject", help="turn down a challenger that awaits approval",
                       description="Turn down the challenger of an awaiting_approval record (the champion stays), "
                       "through the policy's lock, with one record of kind rejection.")
    r.add_argument("id", help="the cycle id of the awaiting_approval record, or a unique prefix of it")
    r.add_argument("--comment", "--reason", dest="comment", metavar="TEXT",
                   help="why, for the log (kept in the rejection's record)")
    r.add_argument("--by", help="who rejects (default: the current user)")
    _wait_flag(r)
    r.set_defaults(func=cmd_reject)

    rb = sub.add_parser("rollback", help="restore a previous champion (logged like a promotion)",
                        description="Move @champion back to a version that served before (default: the one the "
                        "current champion replaced), through the policy's lock, with one record of kind rollback. "
                        "Refused for the current champion, a version whose model files are gone or cannot be "
                        "loaded, and (without --force) one that never served.")
    rb.add_argument("policy", help="policy file or model name")
    rb.add_argument("--to", metavar="VERSION", help="the version to restore (default: the previous champion)")
    rb.add_argument("--reason", help="why, for the log")
    rb.add_argument("--by", help="who rolls back (default: the current user)")
    rb.add_argument("--force", action="store_true", help="allow a version that never served")
    _wait_flag(rb)
    rb.set_defaults(func=cmd_rollback)

    hi = sub.add_parser("history", help="every champion of a model: from/to times and the decision that moved it")
    hi.add_argument("policy", help="policy file or model name")
    hi.add_argument("--json", action="store_true", help="a JSON list of periods")
    hi.set_defaults(func=cmd_history)

    gc = sub.add_parser("gc", help="delete old reports, model files of retired versions, leftover work files",
                        description="Apply [retention] of config.toml now: delete old Evidently reports, the model "
                        "files of retired, rejected, aborted and superseded versions, leftover work folders and old "
                        "cache files. Never the champion, the challenger, a version awaiting approval, the "
                        "baseline's version or the newest retired versions a rollback needs.")
    gc.add_argument("--dry-run", action="store_true", help="only print what would be deleted")
    gc.add_argument("--json", action="store_true", help="print the plan (and result) as JSON")
    gc.set_defaults(func=cmd_gc)
    _config_after(p)
    return p


CONFIG_HELP = "path to config.toml (default: $KAIZEN_CONFIG or ./config.toml); before or after the command"


def _config_after(parser: argparse.ArgumentParser) -> None:
    """``--config`` accepted after the subcommand too (``kaizen log --config x``): every subcommand's parser
    gets the option, its default suppressed so that a value given before the command stands."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                if not any("--config" in a.option_strings for a in child._actions):
                    child.add_argument("--config", default=argparse.SUPPRESS, help=CONFIG_HELP)
                _config_after(child)


def _installed_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kaizen")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit code (``kaizen.errors.EXIT_*``; argparse exits 2 on bad usage)."""
    args = build_parser().parse_args(argv)
    from kaizen.logs import configure

    configure(logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except KaizenError as exc:
        for line in redact(str(exc)).splitlines() or [type(exc).__name__]:
            print(f"kaizen: error: {line}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("kaizen: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not bad input: show where, never the credentials, and exit 1
        import traceback

        print(redact(traceback.format_exc()).rstrip(), file=sys.stderr)
        print(f"kaizen: internal error: {redact(f'{type(exc).__name__}: {exc}').splitlines()[0]}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
