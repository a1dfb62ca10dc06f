"""Sphinx configuration for the skefh documentation (built with -W: warnings are errors)."""

import skefh

project = "skefh"
author = "The skefh developers"
copyright = "2026, The skefh developers"
release = skefh.__version__
version = skefh.__version__

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
myst_enable_extensions = ["dollarmath", "amsmath"]
exclude_patterns = ["_build"]
autosummary_generate = True
autodoc_default_options = {
    "members": True,
    # Our own base classes are documented through their subclasses; torch and scikit-learn
    # members are documented by those projects.
    "inherited-members": "Module,BaseEstimator,TransformerMixin,DensityMixin,_SetOutputMixin,"
    "_MetadataRequester,object",
}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
html_theme = "alabaster"
html_static_path = []
