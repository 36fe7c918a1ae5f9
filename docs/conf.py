"""Sphinx configuration for the fastbp documentation."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

import fastbp  # noqa: E402

project = "fastbp"
author = "the fastbp developers"
copyright = "2026, the fastbp developers"
release = fastbp.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
    "numpydoc",
]

autosummary_generate = True
autodoc_default_options = {"members": True}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
templates_path = ["_templates"]
exclude_patterns = ["_build"]
html_theme = "pydata_sphinx_theme"
html_static_path = ["_static"]
html_title = f"fastbp {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_prev_next": True,
    "secondary_sidebar_items": ["page-toc"],
}
html_sidebars = {"**": ["sidebar-nav-bs"]}
doctest_global_setup = "import numpy as np\nimport fastbp"
html_css_files = ["custom.css"]
