"""Spark schemas derived from the pyarrow ones (so they can never drift)."""

from __future__ import annotations

import pyarrow as pa

from schemas.datasets import Dataset


def to_spark_type(t: pa.DataType):
    from pyspark.sql import types as T

    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return T.StringType()
    if pa.types.is_int32(t):
        return T.IntegerType()
    if pa.types.is_int64(t):
        return T.LongType()
    if pa.types.is_float64(t):
        return T.DoubleType()
    if pa.types.is_boolean(t):
        return T.BooleanType()
    if pa.types.is_timestamp(t):
        return T.TimestampType()
    if pa.types.is_binary(t):
        return T.BinaryType()
    if pa.types.is_list(t):
        return T.ArrayType(to_spark_type(t.value_type), True)
    raise TypeError(f"no Spark type for {t}")


def to_spark_schema(ds_or_schema: Dataset | pa.Schema, *, files: bool = False):
    """StructType for a dataset (full schema, or file schema without partition columns)."""
    from pyspark.sql import types as T

    if isinstance(ds_or_schema, Dataset):
        schema = ds_or_schema.file_schema if files else ds_or_schema.schema
    else:
        schema = ds_or_schema
    return T.StructType([T.StructField(f.name, to_spark_type(f.type), True) for f in schema])
