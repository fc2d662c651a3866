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
    from kaizen.ledger import Ledger, Record, new_cycle_id
    from kaizen.policy import load_policy

    path = _policy_path(cfg, ref)
    try:
        return load_policy(path)
    except PolicyError as exc:
        name = path.stem
        Ledger(cfg.ledger_path).append(Record(
            id=new_cycle_id(name), policy=name, decision="skipped", seed=seed,
            reasons=tuple(f"policy not valid: {p}" for p in exc.problems), error=str(exc)))
        raise


def cmd_bootstrap(args: argparse.Namespace) -> int:
    cfg = _config(args)
    from kaizen.policy import load_policy

    policy = load_policy(_policy_path(cfg, args.policy))
    from kaizen.bootstrap import bootstrap

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
    from kaizen.cycle import run_cycle

    status = 0
    for ref in refs:
        try:
            policy = _load_policy_or_record(cfg, ref, args.seed)
        except PolicyError as exc:
            print(f"skipped: {redact(str(exc))}", file=sys.stderr)
            status = exc.exit_code
            continue
        try:
            rec = run_cycle(cfg, policy, seed=args.seed, wait_seconds=args.wait)
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

    result = run_backtest(policy, Path(args.batches), config=cfg, seed=args.seed, progress=not args.no_progress)
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


def cmd_status(args: argparse.Namespace) -> int:
    from kaizen.config import load_config
    from kaizen.status import collect, render

    st = redact_obj(collect(load_config(args.config)))  # last errors may quote a URI with its password
    print(json.dumps(st, indent=2) if args.json else render(st))
    return 0


def cmd_log(args: argparse.Namespace) -> int:
    from kaizen.config import load_config
    from kaizen.ledger import Ledger

    cfg = load_config(args.config)
    ledger = Ledger(cfg.ledger_path)
    records = [r for r in ledger.records() if not args.policy or r.policy == args.policy]
    if args.last:
        records = records[-args.last:]
    if args.json:
        for r in records:
            print(r.to_json())
        return 0
    if not records:
        print(f"the promotion log is empty ({cfg.ledger_path})")
        return 0
    from kaizen.review import pending

    waiting = {r.id for r in pending(ledger)}
    resolved = {r.resolves: r for r in records if r.resolves}
    print(render_table(records, waiting, resolved))
    if ledger.skipped_lines:
        print(f"({ledger.skipped_lines} unreadable line(s) in {cfg.ledger_path} skipped)", file=sys.stderr)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from kaizen.config import load_config
    from kaizen.ledger import Ledger

    rec = Ledger(load_config(args.config).ledger_path).find(args.id)
    if rec is None:
        raise KaizenError(f"no record {args.id!r} in the promotion log")
    if args.json:
        print(json.dumps(rec.to_dict(), indent=2))
    else:
        _print_record(rec, full=True)
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    cfg = _config(args)
    from kaizen.review import approve

    _print_record(approve(cfg, args.id, actor=args.by, wait_seconds=args.wait))
    return 0


def cmd_reject(args: argparse.Namespace) -> int:
    cfg = _config(args)
    from kaizen.review import reject

    _print_record(reject(cfg, args.id, actor=args.by, reason=args.reason or "", wait_seconds=args.wait))
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    cfg = _config(args)
    from kaizen.errors import RegistryError
    from kaizen.registry import Registry
    from kaizen.retention import describe, run

    try:
        registry = Registry.from_config(cfg)
    except KaizenError:
        raise
    except Exception as exc:  # MLflow raises many types for a store it cannot open
        raise RegistryError(f"MLflow registry unreachable: {type(exc).__name__}: {exc}") from exc
    plan, result = run(cfg, registry, dry_run=args.dry_run)
    if args.json:
        doc = {"dry_run": args.dry_run, "plan": plan.to_dict(), "result": result.to_dict() if result else None}
        print(redact(json.dumps(doc, indent=2)))
    else:
        for line in describe(plan, result):
            print(redact(line))
    return 1 if result is not None and result.failed else 0


# -- printing -------------------------------------------------------------------------------------

def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)


def _print_record(rec: Any, full: bool = False) -> None:
    ch, cl = rec.champion or {}, rec.challenger or {}
    head = f"{rec.decision.upper()}  {rec.policy}  cycle {rec.id}"
    if cl.get("version"):
        head += f"  (champion v{ch.get('version')} vs challenger v{cl.get('version')})"
    elif ch.get("version"):
        head += f"  (champion v{ch.get('version')})"
    print(head)
    for reason in rec.reasons:
        print(f"  - {redact(reason)}")
    if full:
        for g in rec.gates:
            print(f"  gate {g['name']}: {'PASS' if g['passed'] else 'FAIL'}  {redact(str(g['message']))}")
        cost = rec.cost or {}
        print(f"  cost: {_fmt(cost.get('cpu_seconds'))} CPU s, {_fmt(cost.get('wall_seconds'))} wall s; "
              f"MLflow run {rec.mlflow_run_id or '-'}; report {rec.report or '-'}")


def render_table(records: list[Any], waiting: set[str], resolved: dict[str, Any]) -> str:
    rows = [("TIME", "ID", "POLICY", "DECISION", "CHAMP", "CHALL", "METRIC champ→chall", "DRIFT", "WHY")]
    for r in records:
        ch, cl = r.champion or {}, r.challenger or {}
        mon = (r.trigger or {}).get("monitor") or {}
        decision = r.decision
        if r.id in waiting:
            decision += " (open)"
        elif r.id in resolved:
            decision += f" → {resolved[r.id].decision}"
        metric = ""
        if cl.get("holdout_metric") is not None:
            metric = f"{_fmt(ch.get('holdout_metric'))}→{_fmt(cl.get('holdout_metric'))}"
        elif ch.get("window_metric") is not None:
            metric = f"{_fmt(ch.get('window_metric'))}"
        drift = f"{mon['drift_share']:.0%}" if mon.get("drift_share") is not None else ""
        why = _why(r)
        rows.append((r.time.replace("T", " ").rstrip("Z"), r.id, r.policy, decision, _fmt(ch.get("version")),
                     _fmt(cl.get("version")) if cl.get("version") else "", metric, drift, why))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1])
    return "\n".join(lines)


def _why(r: Any) -> str:
    failed = [g["name"] for g in r.gates if not g.get("passed")]
    if r.decision == "rejected" and failed:
        return "failed gate(s): " + ", ".join(failed)
    fired = [s["rule"] for s in (r.trigger or {}).get("signals", []) if s.get("fired")]
    gain = next((g["numbers"].get("improvement") for g in r.gates if g["name"] == "improvement"), None)
    if r.decision in ("promoted", "awaiting_approval") and r.kind == "cycle" and fired and gain is not None:
        return f"triggered by {', '.join(fired)}; all gates passed (improvement {gain:+.4f})"
    if r.decision == "failed" and r.error:
        return r.error.splitlines()[0][:90]
    if r.reasons:
        return r.reasons[0][:90] + ("…" if len(r.reasons[0]) > 90 else "")
    return ""


# -- entry point ----------------------------------------------------------------------------------

def _wait_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="if another kaizen process is working on the policy, wait up to this long for it "
                   "(default: refuse at once, exit 75)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kaizen", description="Keeps production ML models improving: monitor, "
                                "decide, build a challenger, gate it, promote it, and log why.")
    p.add_argument("--config", help="path to config.toml (default: $KAIZEN_CONFIG or ./config.toml)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    pol = sub.add_parser("policy", help="work with policy files")
    polsub = pol.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    v = polsub.add_parser("validate", help="check policy files and the data they name (no training); "
                          "exit 1 listing every error")
    v.add_argument("files", nargs="*", help="policy files (default: every *.toml in the policies folder)")
    v.set_defaults(func=cmd_validate)

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

    bt = sub.add_parser("backtest", help="replay past batches through a policy and two baselines, in isolation",
                        description="Replay a folder of past production batches (features + labels) in order: each "
                        "batch is first scored by the champion serving at that moment, then joins the window and the "
                        "policy's cycle runs. Baselines: static (never retrained) and retrain_every_batch. Runs in a "
                        "temporary state; the live registry and promotion log are never touched.")
    bt.add_argument("policy", help="policy file or model name")
    bt.add_argument("--batches", required=True, metavar="DIR", help="folder of past batch files (.parquet/.csv)")
    bt.add_argument("--json", metavar="OUT", help="write the full result as JSON (see docs/backtest.md)")
    bt.add_argument("--plot", metavar="OUT.png", help="write a PNG: metric per batch, promotions, drift share")
    bt.add_argument("--seed", type=int, help="override build.seed (a seeded backtest repeats exactly)")
    bt.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    bt.set_defaults(func=cmd_backtest)

    rn = sub.add_parser("run", help="run the service in the foreground: every policy on its schedule",
                        description="Run the Kaizen service in the foreground (as systemd, Docker and Kubernetes "
                        "expect): schedules every policy, recovers interrupted cycles, serves /healthz, /readyz "
                        "and /metrics. SIGTERM/SIGINT stop gracefully (a second one aborts); SIGHUP reloads the "
                        "policies. See docs/service.md.")
    rn.set_defaults(func=cmd_run)

    st = sub.add_parser("status", help="per policy: next run, champion, last decision and error (quick)")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_status)

    lg = sub.add_parser("log", help="print the promotion log")
    lg.add_argument("--json", action="store_true", help="one JSON record per line")
    lg.add_argument("--policy", help="only this model's records")
    lg.add_argument("--last", type=int, metavar="N", help="only the newest N records")
    lg.set_defaults(func=cmd_log)

    sh = sub.add_parser("show", help="print one record of the promotion log in full")
    sh.add_argument("id")
    sh.add_argument("--json", action="store_true")
    sh.set_defaults(func=cmd_show)

    a = sub.add_parser("approve", help="promote a challenger that awaits approval")
    a.add_argument("id", help="the cycle id of the awaiting_approval record")
    a.add_argument("--by", help="who approves (default: the current user)")
    _wait_flag(a)
    a.set_defaults(func=cmd_approve)

    r = sub.add_parser("reject", help="turn down a challenger that awaits approval")
    r.add_argument("id", help="the cycle id of the awaiting_approval record")
    r.add_argument("--reason", help="why, for the log")
    r.add_argument("--by", help="who rejects (default: the current user)")
    _wait_flag(r)
    r.set_defaults(func=cmd_reject)

    gc = sub.add_parser("gc", help="delete old reports, model files of retired versions, leftover work files",
                        description="Apply [retention] of config.toml now: delete old Evidently reports, the model "
                        "files of retired, rejected, aborted and superseded versions, leftover work folders and old "
                        "cache files. Never the champion, the challenger, a version awaiting approval, the "
                        "baseline's version or the newest retired versions a rollback needs.")
    gc.add_argument("--dry-run", action="store_true", help="only print what would be deleted")
    gc.add_argument("--json", action="store_true", help="print the plan (and result) as JSON")
    gc.set_defaults(func=cmd_gc)
    return p


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
