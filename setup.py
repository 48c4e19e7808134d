"""Only for the C speed-up; everything else is in pyproject.toml.

The extension is optional: where no C compiler is, the install goes on and the parser
runs its pure-Python twin (same results, slower). scripts/test.sh requires it built."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "app.ami._speedups",
            sources=["app/ami/_speedups.c"],
            optional=True,
            extra_compile_args=["-O2", "-Wall", "-Wextra"],
        )
    ]
)
