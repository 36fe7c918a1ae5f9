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
    "sphinx-mathjax-offline",  # MathJax from the site itself: the math renders with no network access
    "sphinx_copybutton",
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
    # Every section of the root toctree in the top bar, none hidden under "More".
    "header_links_before_dropdown": 8,
}
# The left sidebar lists the pages of the current section; the pages that are a section of their own have none.
html_sidebars = {"**": ["sidebar-nav-bs"], "index": [], "contributing": []}
# The copy button leaves out the prompts of interactive examples.
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
doctest_global_setup = "import numpy as np\nimport fastbp"
html_css_files = ["custom.css"]
