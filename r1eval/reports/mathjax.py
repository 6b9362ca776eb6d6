"""MathJax for the report page, read from an installed package and inlined, so the page
typesets math with no network.

The script is MathJax 3's ``tex-svg-full.js`` component (TeX input with every extension
built in, so nothing is fetched at view time; SVG output: the glyphs are
drawn as paths, so no font files are needed) from the PyPI package ``django-static-mathjax``
(MathJax itself, Apache-2.0; the package only places it under ``mathjax/static``; it needs no
Django to be read). r1eval's repository holds none of MathJax's source.
"""

from __future__ import annotations

from importlib import resources

PACKAGE = "django-static-mathjax"
_COMPONENT = "static/mathjax/es5/tex-svg-full.js"


def mathjax_script() -> str | None:
    """The MathJax component's source, made safe to sit inside a ``<script>`` element, or
    None when the package is not installed (the page then shows the math as source)."""
    try:
        source = (resources.files("mathjax") / _COMPONENT).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        return None
    # Inside a script element, "</script" would end it and "<!--" can change how it is
    # parsed; MathJax has both only inside string and regular-expression literals, where
    # the escape \x3C means the same "<".
    return source.replace("</script", "\\x3C/script").replace("<!--", "\\x3C!--")
