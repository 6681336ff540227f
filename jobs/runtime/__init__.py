"""How jobs run: the one SparkSession builder and launcher (`spark`), the spark-submit entry
(`entry`), the fan-out of independent items over Spark tasks (`fanout`), progress bars
(`progress`) and the one parameters module that turns flags and YAML into a flow's dataclass
(`params`).

Imports only `schemas` (the lowest layer): runtime knows nothing of datasets or analyses.
"""
