"""Builds confer.sfu._fanout, the SFU's C forwarding loop; everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "confer.sfu._fanout",
            ["src/confer/sfu/_fanout.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    ]
)
