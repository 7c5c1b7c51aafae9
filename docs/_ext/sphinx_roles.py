"""A griffe extension: render the Sphinx roles in cqrs_kit's docstrings as links.

The docstrings are Google style, but cross-references use Sphinx roles
(``:class:`~cqrs_kit.Mediator```), which Markdown would show as they are. This turns each
role into an optional autorefs link: a link where the target is documented on the site,
plain code where it is not, so a reference to an undocumented object never breaks the
strict build. ``Example::`` (reStructuredText's literal-block marker) becomes ``Example:``;
the indented block after it is a Markdown code block already.
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj):`(?P<body>[^`]+)`")
_TITLED = re.compile(r"(?P<title>.+?)\s*<(?P<target>[^>]+)>")
_LITERAL_MARKER = re.compile(r"(?<=\S)::$", re.MULTILINE)


def _link(match: re.Match[str], module: str) -> str:
    body = match["body"].strip()
    titled = _TITLED.fullmatch(body)
    if titled:
        title, target = titled["title"], titled["target"]
    elif body.startswith("~"):
        target = body[1:]
        title = target.rsplit(".", 1)[-1]
    else:
        target = title = body
    target = target.removesuffix("()")
    if not target.startswith(("cqrs_kit", "reference_app")):
        target = f"{module}.{target}"
    return (
        f'<autoref identifier="{html.escape(target)}" optional>'
        f"<code>{html.escape(title)}</code></autoref>"
    )


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles in every docstring griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite ``obj``'s docstring in place."""
        docstring = obj.docstring
        if docstring is None:
            return
        module = obj.module.path if not obj.is_module else obj.path
        value = _ROLE.sub(lambda match: _link(match, module), docstring.value)
        docstring.value = _LITERAL_MARKER.sub(":", value)
