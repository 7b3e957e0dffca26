"""Four small C modules; everything else about the build is in pyproject.toml.

`sdk/_hotpath.c` is the @monitor wrapper's common path, `sdk/_transpose.c` the worker's
passes from records to columns, `collector/_pgcopy.c` the collector's binary COPY rows and
`collector/_columnar.c` the per-event values it derives from a columnar batch. All are
optional: where they cannot be built (no compiler, an unsupported platform) the install
goes on and the Python code they stand in for runs (docs/sdk.md and docs/collector.md say
what each saves).
"""

import sys

from setuptools import Extension, setup

modules = [
    Extension("inferloop.sdk._transpose", ["sdk/_transpose.c"], optional=True),
    Extension("inferloop.collector._pgcopy", ["collector/_pgcopy.c"], optional=True),
    Extension("inferloop.collector._columnar", ["collector/_columnar.c"], optional=True),
]
if sys.platform.startswith("linux"):
    # The wrapper reads CLOCK_MONOTONIC, which is time.perf_counter_ns's clock on Linux only.
    modules.append(Extension("inferloop.sdk._hotpath", ["sdk/_hotpath.c"], optional=True))

setup(ext_modules=modules)
