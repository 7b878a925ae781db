"""Reading data: the cube through the Parquet snapshot or SQL pushdown, the case reads of
the Case Explorer, full-text search, and importing files."""
