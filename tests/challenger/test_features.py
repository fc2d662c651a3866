from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from kaizen.challenger import features as F
from kaizen.data.schema import Schema

PRIMS = ("divide_numeric", "multiply_numeric", "is_null")


def _synth(rows, schema, **kw):
    kw = {"trans_primitives": PRIMS, "max_depth": 1, "max_features": 25, **kw}
    return F.synthesize(rows, schema, **kw)


def test_synthesize_keeps_raw_columns_and_caps(classification_rows, schema):
    rows = classification_rows.iloc[:600]
    fs, x = _synth(rows, schema, target=rows["target"])
    assert fs.identity == schema.features
    assert fs.names[: len(schema.features)] == schema.features
    assert 7 < len(fs.names) <= 25
    assert set(fs.categorical) == set(schema.categorical)
    assert not {"ts", "target", "prediction", F.ROW_INDEX} & set(fs.names)
    assert list(x.columns) == list(fs.names) and len(x) == len(rows)
    assert list(x.index) == list(range(len(rows)))


def test_selection_says_of_every_proposed_feature_whether_it_was_kept_and_why(classification_rows, schema):
    rows = classification_rows.iloc[:600]
    cap = len(schema.features) + 3
    fs, _ = _synth(rows, schema, target=rows["target"], max_features=cap)
    sel = {e["name"]: e for e in fs.selection}
    assert len(sel) == len(fs.selection) > len(fs.names)  # one entry per proposed feature, more proposed than kept
    assert {n for n, e in sel.items() if e["kept"]} == set(fs.names)
    assert all(sel[n]["rule"] == sel[n]["reason"] == "raw column" for n in schema.features)
    capped = [e for e in fs.selection if e["rule"] == "max_features"]
    assert capped and all(not e["kept"] and e["reason"].startswith(f"max_features: over build.max_features = {cap}:")
                          for e in capped)
    assert {e["rule"] for e in fs.selection} <= {"raw column", "kept", "low information", "redundant", "max_features"}
    ranks = [int(e["reason"].split("ranked ")[1].split(" of")[0]) for e in capped]
    assert min(ranks) == 4  # three engineered features fit under the cap; the 4th-ranked is the first dropped
    assert all(e["reason"] for e in fs.selection)
    assert fs.select(schema.features).selection == fs.selection  # a subset still tells how the set was chosen


def test_model_input_types(classification_rows, schema):
    fs, x = _synth(classification_rows.iloc[:600], schema)
    for name in fs.numeric:
        assert x[name].dtype == np.float64
        assert not np.isinf(x[name]).any()
    for name in fs.categorical:
        assert x[name].dtype == object
        assert all(isinstance(v, str) for v in x[name])
    assert (x["region"] == F.MISSING).any()  # None became the token
    assert x["usage"].isna().any()           # NaN stays NaN for the imputer


def test_max_features_never_drops_raw_columns(classification_rows, schema):
    fs, x = _synth(classification_rows.iloc[:300], schema, max_features=3)
    assert fs.names == schema.features and fs.engineered == ()


def test_cap_ranks_by_target_correlation():
    rng = np.random.default_rng(3)
    df = pd.DataFrame({k: rng.normal(size=400) for k in "abcd"})
    y = df["a"] * df["b"]
    sch = Schema(features=tuple("abcd"), numerical=tuple("abcd"), categorical=(), target="y")
    fs, _ = F.synthesize(df, sch, trans_primitives=["multiply_numeric"], max_depth=1, max_features=5,
                         target=y)
    assert fs.engineered == ("a * b",)
    fs_none, _ = F.synthesize(df, sch, trans_primitives=["multiply_numeric"], max_depth=1, max_features=5)
    assert len(fs_none.engineered) == 1  # DFS order, deterministic
    again, _ = F.synthesize(df, sch, trans_primitives=["multiply_numeric"], max_depth=1, max_features=5)
    assert again.names == fs_none.names


def test_calculate_matches_training_matrix_and_does_not_mutate(classification_rows, schema):
    rows = classification_rows.iloc[:400]
    before = rows.copy()
    fs, x = _synth(rows, schema)
    pd.testing.assert_frame_equal(rows, before)
    pd.testing.assert_frame_equal(F.calculate(fs, rows, schema), x)
    tail = F.calculate(fs, classification_rows.iloc[400:450], schema)
    assert len(tail) == 50 and list(tail.columns) == list(fs.names)


def test_save_load_round_trip(tmp_path, classification_rows, schema):
    fs, _ = _synth(classification_rows.iloc[:400], schema)
    fs.save(tmp_path / "features.json")
    loaded = F.load_features(tmp_path / "features.json", identity=fs.identity, categorical=fs.categorical)
    assert loaded.names == fs.names
    new = classification_rows.iloc[500:560]
    pd.testing.assert_frame_equal(F.calculate(loaded, new, schema), F.calculate(fs, new, schema))


def test_definitions_saved_by_another_featuretools_version_are_refused_with_both_versions(
        tmp_path, classification_rows, schema):
    import json

    import featuretools as ft

    from kaizen.errors import FeatureVersionError

    fs, _ = _synth(classification_rows.iloc[:400], schema)
    fs.save(tmp_path / "features.json")
    saved = json.loads((tmp_path / "features.json").read_text())
    assert saved["ft_version"] == ft.__version__  # what the model records, in featuretools' own field
    for other in ("0.27.1", None):
        doc = {**saved, "ft_version": other} if other else {k: v for k, v in saved.items() if k != "ft_version"}
        (tmp_path / "other.json").write_text(json.dumps(doc))
        with pytest.raises(FeatureVersionError) as err:
            F.load_features(tmp_path / "other.json", identity=fs.identity, categorical=fs.categorical)
        said = str(err.value)
        assert f"featuretools {other or '(unknown version)'}" in said and f"featuretools {ft.__version__}" in said
        assert f"featuretools=={other}" in said and "other.json" in said


def test_new_rows_tolerate_unseen_missing_and_extra(classification_rows, schema):
    fs, _ = _synth(classification_rows.iloc[:400], schema)
    odd = classification_rows.iloc[:3].copy()
    odd.index = [17, 3, 99]
    odd["plan"] = ["enterprise", None, "basic"]
    odd["age"] = [np.nan, 0.0, 30.0]
    odd["calls"] = [0.0, np.inf, 2.0]
    odd["unrelated"] = "x"
    x = F.calculate(fs, odd, schema)
    assert list(x["plan"]) == ["enterprise", F.MISSING, "basic"]
    assert np.isnan(x.loc[0, "age"]) and np.isnan(x.loc[1, "calls"])
    numeric = x[list(fs.numeric)].to_numpy()
    assert not np.isinf(numeric).any()
    with pytest.raises(KeyError, match="tenure"):
        F.calculate(fs, odd.drop(columns="tenure"), schema)
    assert len(F.calculate(fs, odd.iloc[:0], schema)) == 0


def test_select_subsets_in_order(classification_rows, schema):
    fs, _ = _synth(classification_rows.iloc[:300], schema)
    sub = fs.select(["region", "age"])
    assert sub.names == ("age", "region") and sub.categorical == ("region",) and sub.numeric == ("age",)
    with pytest.raises(KeyError):
        fs.select(["nope"])


def test_library_warnings_are_silenced_once_per_process_and_never_toggled(classification_rows, schema, tmp_path):
    """featuretools/woodwork/numpy noise is filtered once, when the process starts (kaizen._env.prepare): warning
    filters are process-wide, and a build running on a worker thread must not swap them (warnings.catch_warnings)."""
    import os
    import subprocess
    import sys

    before = list(warnings.filters)
    with F.quiet():
        assert warnings.filters == before  # nothing toggled around a build
    classification_rows.to_pickle(tmp_path / "rows.pkl")
    code = ("import pickle, warnings\nfrom kaizen._env import prepare\nprepare()\n"
            "from kaizen.challenger import features as F\nfrom kaizen.data.schema import infer_schema\n"
            "rows = pickle.load(open('rows.pkl', 'rb'))\nschema = infer_schema(rows, target='target')\n"
            "with warnings.catch_warnings(record=True) as caught:\n"
            "    fs, _ = F.synthesize(rows.iloc[:300], schema, max_depth=1, max_features=40,\n"
            "                         trans_primitives=('divide_numeric', 'month', 'is_null'))\n"
            "    F.calculate(fs, rows.iloc[300:320], schema)\n"
            "print(len([w for w in caught if any(k in w.filename for k in ('featuretools', 'woodwork', 'numpy'))]))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "0"


def test_batch_dependent_primitives_are_refused(classification_rows, schema):
    assert F.batch_dependent(["divide_numeric", "percentile"]) == ["percentile"]
    with pytest.raises(ValueError, match="percentile"):
        _synth(classification_rows.iloc[:100], schema, trans_primitives=("percentile",))


def _mixed_frame(seed: int, n: int = 60, p: int = 40) -> pd.DataFrame:
    """Columns of every kind the correlation filter meets: near copies of a few bases, large offsets, NaNs,
    booleans, constants, infinities, categoricals, whole numbers with NaNs (woodwork: IntegerNullable)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, 5))
    cols = {}
    for k in range(p):
        b = base[:, rng.integers(0, 5)]
        kind = rng.integers(0, 8)
        if kind == 0:
            v = b + rng.normal(scale=rng.choice([0.01, 0.2, 0.33, 1.0]), size=n)
        elif kind == 1:
            v = b * rng.normal() + 1e6
        elif kind == 2:
            v = np.where(rng.random(n) < 0.3, np.nan, b + rng.normal(scale=0.1, size=n))
        elif kind == 3:
            v = b > 0
        elif kind == 4:
            v = np.full(n, 3.0)
        elif kind == 5:
            v = np.where(rng.random(n) < 0.1, np.inf, b)
        elif kind == 6:
            v = rng.choice(["a", "b", "c"], n)
        else:
            v = np.where(rng.random(n) < 0.5, np.nan, np.round(b * 3))
        cols[f"f{k}"] = v
    return pd.DataFrame(cols)


@pytest.mark.parametrize("seed", range(12))
def test_correlation_filter_keeps_exactly_what_featuretools_keeps(seed):
    import featuretools as ft

    frame = _mixed_frame(seed)
    keep = ["f0", "f3"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = ft.selection.remove_highly_correlated_features(
            frame.copy(), pct_corr_threshold=F.CORRELATION_THRESHOLD, features_to_keep=keep)
    ours, _ = F.drop_correlated(frame.copy(), [], keep=keep)
    assert list(ours.columns) == list(theirs.columns)
    assert list(ours.dtypes) == list(theirs.dtypes)  # woodwork's conversions too
    assert len(ours.columns) < len(frame.columns)  # the frame does have correlated columns


def test_correlation_filter_compares_with_dropped_columns_and_keeps_the_kept_ones():
    rng = np.random.default_rng(0)
    a = rng.normal(size=50)
    frame = pd.DataFrame({"a": a, "b": a + 0.01 * rng.normal(size=50), "c": a + 0.02 * rng.normal(size=50),
                          "d": rng.normal(size=50)})
    out, _ = F.drop_correlated(frame.copy(), [], keep=["c"])
    assert list(out.columns) == ["a", "c", "d"]


def test_many_proposals_are_logged(classification_rows, schema, caplog):
    rows = classification_rows.iloc[:200]
    with caplog.at_level("WARNING", logger="kaizen.challenger.features"):
        _synth(rows, schema, max_features=1)
    assert "DFS proposed" in caplog.text and "max_features = 1" in caplog.text
