"""Small pure helpers on the frames a cycle passes around (feature matrix, target, labelled rows)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from kaizen.data.schema import Schema

__all__ = ["cast_target", "labelled", "model_frame", "pool_columns", "target_values"]


def model_frame(df: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """The raw columns a model is given (:attr:`Schema.inputs`: the features, and with related tables their keys
    and the timestamp), in the schema's order."""
    return df[list(schema.inputs)].reset_index(drop=True)


def target_values(df: pd.DataFrame, schema: Schema, task: str) -> np.ndarray:
    y = df[schema.target]
    if task == "regression":
        return y.astype(float).to_numpy()
    return y.to_numpy()


def labelled(df: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """The rows whose label has arrived."""
    return df[df[schema.target].notna()].reset_index(drop=True)


def pool_columns(schema: Schema) -> list[str]:
    """Features (and related tables' keys), target and timestamp: the columns training rows keep."""
    keys = [k for k in schema.keys if k not in schema.features]
    return [*schema.features, *keys, schema.target] + ([schema.timestamp] if schema.timestamp else [])


def cast_target(df: pd.DataFrame, like: pd.Series, task: str) -> pd.DataFrame:
    """Labels read from a partly-labelled batch come back as float; give them the reference's dtype."""
    if task == "regression":
        return df.assign(**{like.name: df[like.name].astype(float)})
    try:
        return df.assign(**{like.name: df[like.name].astype(like.dtype)})
    except (TypeError, ValueError):
        return df
