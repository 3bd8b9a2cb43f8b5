"""Maps the top-level parts (compiler/, runtime/, ...) into the ``morphware.*`` namespace.

pyproject.toml holds the metadata; this file only computes the package list, because setuptools'
declarative ``packages.find`` cannot rename folders into a namespace.

``examples/`` ships too, as ``morphware/examples``: the commands' default job (the digits example
that ``morphware demo`` runs) must exist in a wheel, and this keeps its one copy where a reader of
the repository looks for it. Code finds it beside its parts, the same path in both layouts.
"""

from setuptools import find_namespace_packages, setup

PARTS = ("compiler", "systolic", "contracts", "runtime", "bitstreams", "examples")

package_dir: dict[str, str] = {}
packages: list[str] = []
for part in PARTS:
    package_dir[f"morphware.{part}"] = part
    packages.append(f"morphware.{part}")
    # namespace packages too: data folders (rtl/, overlays/, static/) ship as package data
    for sub in find_namespace_packages(where=part, exclude=["*__pycache__*"]):
        packages.append(f"morphware.{part}.{sub}")

setup(packages=packages, package_dir=package_dir)
