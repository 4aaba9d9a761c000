"""Package discovery for svac (everything else is in pyproject.toml).

``prompts/``, ``configs/`` and ``train/`` stay at the top level of the repository and
are shipped inside the wheel as the packages ``svac.prompts``, ``svac.configs`` and
``svac.recipes`` (see ``package-dir`` in pyproject.toml).
"""

from setuptools import find_packages, setup

setup(packages=find_packages(include=["svac", "svac.*"]) + ["svac.prompts", "svac.configs", "svac.recipes"])
