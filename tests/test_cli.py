"""The quick commands, run as real processes: validate, log, show, --help."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from kaizen.ledger import Ledger, Record

ROOT = Path(__file__).resolve().parents[1]


def kaizen(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kaizen", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})


def test_help_does_not_import_heavy_libraries() -> None:
    code = ("import sys, kaizen.cli as c\n"
            "try:\n    c.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('mlflow', 'evidently', 'featuretools', 'optuna', 'sklearn', 'pandas') "
            "if m in sys.modules]\nprint('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert "HEAVY []" in out.stdout


def test_validate_lists_every_error_and_exits_1(home) -> None:
    home.production.mkdir(parents=True)
    bad = home.root / "policies" / "bad.toml"
    bad.write_text('[model]\nname = "x"\ntask = "binary_classification"\nmetric = "auc"\n')
    r = kaizen("policy", "validate", cwd=home.root)
    assert r.returncode == 1
    assert "ok    " in r.stdout and "churn.toml" in r.stdout
    assert f"error {bad.resolve()}: model.metric must be one of" in r.stderr
    assert "model.target is required" in r.stderr and "data.reference is required" in r.stderr
    good = kaizen("policy", "validate", str(home.root / "policies" / "churn.toml"), cwd=home.root)
    assert good.returncode == 0, good.stderr


def test_bad_config_is_one_clear_line(home) -> None:
    (home.root / "config.toml").write_text("[state]\ndirr = 'x'\n")
    r = kaizen("log", cwd=home.root)
    assert r.returncode == 78  # EX_CONFIG: systemd does not restart a service whose configuration is wrong
    assert r.stderr.strip() == "kaizen: error: config.toml: state.dirr is not a known setting"
    assert "Traceback" not in r.stderr


def test_log_table_json_and_show(home) -> None:
    led = Ledger(home.config().ledger_path)
    led.append(Record(id="c1", policy="churn", decision="skipped", reasons=("no trigger fired: calm",)))
    led.append(Record(id="c2", policy="churn", decision="rejected", champion={"version": "1", "holdout_metric": 0.8},
                      challenger={"version": "2", "holdout_metric": 0.79},
                      gates=({"name": "improvement", "passed": False, "message": "worse", "numbers": {}},)))
    table = kaizen("log", cwd=home.root)
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0].split()[:4] == ["TIME", "ID", "POLICY", "DECISION"]
    assert "skipped" in lines[1] and "no trigger fired" in lines[1]
    assert "rejected" in lines[2] and "0.8000→0.7900" in lines[2] and "failed gate(s): improvement" in lines[2]
    js = kaizen("log", "--json", cwd=home.root)
    assert [json.loads(x)["id"] for x in js.stdout.splitlines()] == ["c1", "c2"]
    shown = kaizen("show", "c2", cwd=home.root)
    assert "gate improvement: FAIL  worse" in shown.stdout
    missing = kaizen("show", "nope", cwd=home.root)
    assert missing.returncode == 1 and "no record 'nope'" in missing.stderr
