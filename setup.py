"""The SDK's two small C modules; everything else about the build is in pyproject.toml.

`sdk/_hotpath.c` is the @monitor wrapper's common path, `sdk/_transpose.c` the worker's
dict-to-columns pass. Both are optional: where they cannot be built (no compiler, an
unsupported platform) the install goes on and the Python code they stand in for runs
(docs/sdk.md says what each saves).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("inferloop.sdk._hotpath", ["sdk/_hotpath.c"], optional=True),
        Extension("inferloop.sdk._transpose", ["sdk/_transpose.c"], optional=True),
    ]
)
