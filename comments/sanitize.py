"""Turn a reader's raw comment text into safe HTML, and vet the "Website" field.

This is the only place that decides which HTML a comment may contain: the
allowlist, the link policy and the paragraph rule all live here. Comments are
sanitized once, at write time, and the result is stored beside the raw text,
so nothing here is on the read path.
"""

from __future__ import annotations

import ipaddress
import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import idna
from bleach.linkifier import LinkifyFilter, build_url_re
from bleach.sanitizer import Cleaner

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

ALLOWED_TAGS: frozenset[str] = frozenset(
    {
        "a",
        "abbr",
        "b",
        "blockquote",
        "br",
        "cite",
        "code",
        "del",
        "em",
        "i",
        "li",
        "ol",
        "p",
        "pre",
        "q",
        "s",
        "strong",
        "ul",
    }
)

# Only these attributes survive bleach. `rel` is deliberately absent: the
# reader's own rel is dropped and ours is written by _enforce_links.
_ALLOWED_ATTRIBUTES: dict[str, list[str]] = {"a": ["href"], "abbr": ["title"]}
_ALLOWED_PROTOCOLS: frozenset[str] = frozenset({"http", "https", "mailto"})
_REL = "nofollow ugc"

# The reader's block elements: they are never wrapped in our <p>, and the
# newlines that touch them are layout, not line breaks.
_BLOCK_TAGS: frozenset[str] = frozenset({"blockquote", "li", "ol", "p", "pre", "ul"})
_VOID_TAGS: frozenset[str] = frozenset({"br"})
_MAX_DEPTH = 50

# bleach's default URL regex linkifies ftp:, irc:, data: and a dozen more
# schemes, and linkify runs *after* the sanitizer, so its hrefs are never
# protocol-checked. Restricting the regex keeps linkify inside our allowlist.
# Restricted alone, it would still link the "example.com" of "ftp://example.com"
# as http://example.com, so a match may not start right after "/" or ":".
_URL_RE = re.compile(
    r"(?<![/:])" + build_url_re(protocols=["http", "https"]).pattern,
    re.IGNORECASE | re.VERBOSE | re.UNICODE,
)

# A blank line: a newline, then at least one more, with only spaces or tabs between.
_BLANK_LINE_RE = re.compile(r"\n[ \t]*(?:\n[ \t]*)+")
_NEWLINE_AFTER_BR_RE = re.compile(r"\A[ \t]*\n")
# C0 controls except \t and \n (\r is normalized to \n before this runs), DEL and C1.
_CONTROL_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Lone surrogates (from JSON "\ud800") would make the text unencodable as UTF-8.
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
# "http:" must be followed by "//": "https:javascript:..." is no link a reader means.
_LINK_SCHEME_RE = re.compile(r"(?:https?:(?=//)|mailto:)", re.IGNORECASE)
_HTML_SPACE = " \t\n\r\f"
_LAYOUT_SPACE = " \t\n"

_Token: TypeAlias = dict[str, Any]
_AttrKey: TypeAlias = tuple[str | None, str]


@dataclass
class _Entity:
    """A character reference that bleach kept as written (`&nbsp;`)."""

    name: str


@dataclass
class _Element:
    """An allowed element, rebuilt from the token stream so layout can look around."""

    name: str
    attrs: dict[_AttrKey, str] = field(default_factory=dict)
    children: list[_Node] = field(default_factory=list)


_Node: TypeAlias = "_Element | _Entity | str"


def clean(text: str) -> str:
    r"""Return the reader's comment as safe HTML, ready to store and serve as is.

    Markup: only the tags in ALLOWED_TAGS survive. Any other tag is escaped, not
    removed, so a reader who writes ``a <b> c`` or ``<script>`` in prose keeps
    their words; escaped markup is text and can never become live. HTML comments
    are dropped. ``href`` (on ``a``: http, https and mailto, written literally)
    and ``title`` (on ``abbr``) are the only attributes kept. Every link gets
    ``rel="nofollow ugc"``, replacing any rel the reader gave, and an ``a``
    without an acceptable absolute href is unwrapped to its content (relative
    links would point into the embedding site). Bare http(s) URLs and
    ``www.example.com`` are linkified, except inside ``pre`` and ``code``
    (bleach tracks one such element at a time, so in ``<pre><code>a</code> b</pre>``
    the ``b`` part is linkified); email addresses are not.

    Layout, applied after sanitizing:

    1. At the top level, text and inline elements are gathered into paragraphs
       and each is wrapped in ``<p>``. A blank line (two or more newlines,
       with only spaces or tabs between) or one of the reader's own block
       elements (p, pre, blockquote, ul, ol, li) ends a paragraph. The reader's
       blocks are kept as written and never wrapped. A paragraph that contains a
       block deeper down (``<b><p>x</p></b>``) is left unwrapped, because
       ``<p>`` cannot nest.
    2. Everywhere else, except inside ``pre``, each remaining newline becomes
       ``<br>``, so a blank line inside the reader's element gives ``<br><br>``.
    3. Whitespace that touches a block boundary (the start or end of the
       comment, of a paragraph or of a block element, or the gap between two
       blocks) is dropped rather than turned into ``<br>``, and one newline right
       after the reader's own ``<br>`` is dropped too, so ``a<br>\nb`` keeps one break.
    4. ``pre`` content is never touched. Top-level blocks are separated by one newline.

    Elements that would end up nested more than 50 deep are unwrapped, keeping their text.

    Input is cleaned first: CRLF and CR become LF; C0 controls other than tab
    and newline, DEL and C1 controls are removed; lone surrogates become U+FFFD.
    The output depends only on the input.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL_RE.sub("", text)
    text = _SURROGATE_RE.sub("\ufffd", text)
    if not text.strip():
        return ""
    html: str = _cleaner().clean(text)
    return html


def clean_url(url: str) -> str | None:
    r"""Return the normalized http(s) URL of the "Website" field, or None to refuse it.

    Accepted: ``http`` or ``https`` followed by ``//`` and a host with at least one
    dot (a domain name) or an IP literal, with an optional port. Refused: every
    other scheme (javascript:, data:, vbscript:, ...), credentials (``user:pass@``,
    which dress up one host as another), and any control character, whitespace or
    backslash left after trimming. Such characters are how ``java\tscript:`` and
    ``http:\\evil`` hide from naive checks, because browsers drop or reinterpret
    them. Entities are not decoded: this is a plain URL, so ``&#106;avascript:``
    simply lacks an http scheme.

    Normalized: surrounding whitespace is trimmed; the scheme and host are
    lowercased; an internationalized host is IDNA-encoded (UTS #46,
    ``bücher.de`` → ``xn--bcher-kva.de``); one trailing dot of the host and the
    default port (80, 443) are dropped; an empty path becomes ``/``; characters
    that a URL may not contain (quotes, ``<>``, non-ASCII) are
    percent-encoded in the path, query and fragment, with existing ``%XX`` kept.
    The result is what a browser would show in its address bar, and is safe to put
    in an attribute. Length is checked by the caller.
    """
    url = url.strip()
    if not url or _CONTROL_RE.search(url) or _SURROGATE_RE.search(url):
        return None
    if any(ch.isspace() or ch == "\\" for ch in url):
        return None
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ("http", "https"):
        return None
    authority_end = len(rest)
    for delimiter in "/?#":
        position = rest.find(delimiter)
        if position != -1:
            authority_end = min(authority_end, position)
    authority, tail = rest[:authority_end], rest[authority_end:]
    if "@" in authority:
        return None
    host_port = _normalize_authority(authority, scheme)
    if host_port is None:
        return None
    path, _, fragment = tail.partition("#")
    path, has_query, query = path.partition("?")
    result = f"{scheme}://{host_port}{_quote(path) or '/'}"
    if has_query:
        result += "?" + _quote(query)
    if "#" in tail:
        result += "#" + _quote(fragment)
    return result


# -- bleach plumbing ---------------------------------------------------------

_local = threading.local()


def _cleaner() -> Cleaner:
    """Return this thread's Cleaner, building it on first use.

    bleach documents its Cleaner as not thread-safe (the html5lib parser keeps
    state between calls), so there is one per thread rather than one per
    process. Building one costs far more than a comment, so each thread builds
    it once; in the usual async deployment that is exactly one.
    """
    cleaner: Cleaner | None = getattr(_local, "cleaner", None)
    if cleaner is None:
        cleaner = Cleaner(
            tags=ALLOWED_TAGS,
            attributes=_ALLOWED_ATTRIBUTES,
            protocols=_ALLOWED_PROTOCOLS,
            strip=False,
            strip_comments=True,
            # Cast: bleach types a filter as an html5lib Filter subclass; ours only
            # needs to be a callable taking source= and returning a token iterable.
            filters=[cast("Any", _CommentFilter)],
        )
        _local.cleaner = cleaner
    return cleaner


class _CommentFilter:
    """Linkify, then enforce the link policy and lay out paragraphs.

    One filter rather than two, because bleach runs filters after its
    sanitizer: the links that linkify creates would otherwise never be checked.
    """

    def __init__(self, source: Iterable[_Token]) -> None:
        # No callbacks: rel and href are enforced on the finished tree in
        # _enforce_links, for linkified links and the reader's own alike.
        self._linkified: Iterable[_Token] = LinkifyFilter(
            cast("Any", source),
            callbacks=[],
            skip_tags={"pre", "code"},
            parse_email=False,
            url_re=_URL_RE,
        )

    def __iter__(self) -> Iterator[_Token]:
        root = _build_tree(self._linkified)
        _enforce_links(root)
        return _emit_children(_layout_top(root.children))


def _build_tree(tokens: Iterable[_Token]) -> _Element:
    """Rebuild the sanitized token stream as a tree, unwrapping elements nested too deep.

    The stream comes from a parsed tree, so allowed start and end tags are
    balanced and each end tag closes the latest open element; disallowed tags
    were turned into text by bleach. Beyond _MAX_DEPTH, elements are unwrapped
    (their content is kept): that bounds the recursion below, and keeps the
    output far from browsers' own nesting limit (512 in Chromium), past which
    the browser would re-parent nodes and see a different tree than ours.
    """
    root = _Element("")
    stack = [root]
    unwrapped = 0
    for token in tokens:
        kind = token["type"]
        if kind == "StartTag":
            # Depth as served: an inline element at the top level will sit in our <p>.
            top = stack[1].name if len(stack) > 1 else token["name"]
            if len(stack) + (top not in _BLOCK_TAGS) > _MAX_DEPTH:
                unwrapped += 1
                continue
            element = _Element(token["name"], dict(token.get("data") or {}))
            stack[-1].children.append(element)
            stack.append(element)
        elif kind == "EndTag":
            if unwrapped:
                unwrapped -= 1
            elif len(stack) > 1:
                stack.pop()
        elif kind == "EmptyTag":
            stack[-1].children.append(_Element(token["name"], dict(token.get("data") or {})))
        elif kind in ("Characters", "SpaceCharacters"):
            _append(stack[-1].children, token["data"])
        elif kind == "Entity":
            stack[-1].children.append(_Entity(token["name"]))
    return root


def _append(nodes: list[_Node], node: _Node) -> None:
    """Append node, merging adjacent text so layout sees each text run whole."""
    if isinstance(node, str):
        if not node:
            return
        if nodes and isinstance(nodes[-1], str):
            nodes[-1] += node
            return
    nodes.append(node)


def _enforce_links(element: _Element) -> None:
    """Give every link an absolute href with an allowed scheme and our rel, or unwrap it."""
    children: list[_Node] = []
    for child in element.children:
        if isinstance(child, _Element):
            _enforce_links(child)
            if child.name == "a":
                href = _link_href(child.attrs.get((None, "href")))
                if href is None:
                    for grandchild in child.children:
                        _append(children, grandchild)
                    continue
                child.attrs = {(None, "href"): href, (None, "rel"): _REL}
        _append(children, child)
    element.children = children


def _link_href(raw: str | None) -> str | None:
    """Return href as served, or None unless it is an absolute ``http(s)://`` or ``mailto:`` URL.

    bleach keeps relative URLs ("/x", "x.html", "#x") when http is allowed,
    keeps leading whitespace, and keeps character references in the scheme
    ("&#104;ttp:"). We require the scheme to be written literally at the start,
    so no later decoding step can change what the link's scheme is.
    """
    if raw is None:
        return None
    value = raw.strip(_HTML_SPACE)
    match = _LINK_SCHEME_RE.match(value)
    if match is None:
        return None
    return value[: match.end()].lower() + value[match.end() :]


# -- layout ------------------------------------------------------------------


def _is_block(node: _Node | None) -> bool:
    return isinstance(node, _Element) and node.name in _BLOCK_TAGS


def _has_block(nodes: list[_Node]) -> bool:
    return any(isinstance(node, _Element) and (node.name in _BLOCK_TAGS or _has_block(node.children)) for node in nodes)


def _layout_top(nodes: list[_Node]) -> list[_Node]:
    """Apply rule 1: wrap top-level inline runs in <p>, splitting at blank lines."""
    blocks: list[list[_Node]] = []
    run: list[_Node] = []

    def flush() -> None:
        laid_out = _line_breaks(run, block=True)
        run.clear()
        if all(isinstance(node, str) and not node.strip(_LAYOUT_SPACE) for node in laid_out):
            return
        blocks.append(laid_out if _has_block(laid_out) else [_Element("p", children=laid_out)])

    for node in nodes:
        if isinstance(node, _Element) and node.name in _BLOCK_TAGS:
            flush()
            blocks.append([_layout_element(node)])
        elif isinstance(node, str):
            first, *others = _BLANK_LINE_RE.split(node)
            _append(run, first)
            for piece in others:
                flush()
                _append(run, piece)
        else:
            run.append(node)
    flush()

    out: list[_Node] = []
    for index, block in enumerate(blocks):
        if index:
            out.append("\n")
        out.extend(block)
    return out


def _layout_element(element: _Element) -> _Element:
    """Apply rules 2-4 inside one of the reader's elements."""
    if element.name == "pre":
        # The HTML parser drops one newline right after <pre>; the serializer
        # does not put it back, so a leading blank line would vanish on display.
        if element.children and isinstance(element.children[0], str) and element.children[0].startswith("\n"):
            element.children[0] = "\n" + element.children[0]
        return element
    element.children = _line_breaks(element.children, block=element.name in _BLOCK_TAGS)
    return element


def _line_breaks(nodes: list[_Node], *, block: bool) -> list[_Node]:
    """Turn newlines into <br>, except where they touch a block boundary (rule 3)."""
    out: list[_Node] = []
    for index, node in enumerate(nodes):
        if isinstance(node, _Element):
            out.append(_layout_element(node))
            continue
        if isinstance(node, _Entity):
            out.append(node)
            continue
        previous = nodes[index - 1] if index else None
        following = nodes[index + 1] if index + 1 < len(nodes) else None
        text = node
        if (previous is None and block) or _is_block(previous):
            text = text.lstrip(_LAYOUT_SPACE)
        elif isinstance(previous, _Element) and previous.name == "br":
            text = _NEWLINE_AFTER_BR_RE.sub("", text, count=1)
        if (following is None and block) or _is_block(following):
            text = text.rstrip(_LAYOUT_SPACE)
        first, *lines = text.split("\n")
        _append(out, first)
        for line in lines:
            out.append(_Element("br"))
            _append(out, line)
    return out


def _emit_children(nodes: list[_Node]) -> Iterator[_Token]:
    for node in nodes:
        yield from _emit(node)


def _emit(node: _Node) -> Iterator[_Token]:
    """Turn a node back into the tokens bleach's serializer expects."""
    if isinstance(node, str):
        yield {"type": "Characters", "data": node}
    elif isinstance(node, _Entity):
        yield {"type": "Entity", "name": node.name}
    elif node.name in _VOID_TAGS:
        yield {
            "type": "EmptyTag",
            "name": node.name,
            "namespace": None,
            "data": node.attrs,
        }
    else:
        yield {
            "type": "StartTag",
            "name": node.name,
            "namespace": None,
            "data": node.attrs,
        }
        yield from _emit_children(node.children)
        yield {"type": "EndTag", "name": node.name, "namespace": None}


# -- URL helpers -------------------------------------------------------------

# RFC 3986 unreserved and reserved characters, plus "%" so existing escapes stay.
_URL_SAFE = "-._~:/?#[]@!$&'()*+,;=%"
_LABEL_RE = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_PORT_RE = re.compile(r"[0-9]{1,5}")
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def _quote(part: str) -> str:
    """Percent-encode what a URL may not contain, keeping existing escapes and delimiters.

    Quotes and angle brackets are encoded too, so the stored URL cannot end an
    attribute even if a template forgets to escape it.
    """
    return urllib.parse.quote(part, safe=_URL_SAFE.replace("'", ""))


def _normalize_authority(authority: str, scheme: str) -> str | None:
    """Return ``host[:port]`` normalized, or None if the host or port is not acceptable."""
    if authority.startswith("["):
        host, bracket, port = authority[1:].partition("]")
        if not bracket or (port and not port.startswith(":")):
            return None
        try:
            host = f"[{ipaddress.IPv6Address(host).compressed}]"
        except ValueError:
            return None
        port = port[1:]
    else:
        name, _, port = authority.partition(":")
        normalized = _normalize_host(name)
        if normalized is None:
            return None
        host = normalized
    if port:
        if not _PORT_RE.fullmatch(port) or not 0 < int(port) < 65536:
            return None
        port = str(int(port))
        if port == _DEFAULT_PORTS[scheme]:
            port = ""
    elif ":" in authority.rpartition("]")[2]:
        return None  # "host:" with an empty port
    return f"{host}:{port}" if port else host


def _normalize_host(host: str) -> str | None:
    """Return a lowercase ASCII host name or dotted-quad IPv4 address, or None."""
    host = host.removesuffix(".")
    if not host:
        return None
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True, transitional=False).decode("ascii")
        except idna.IDNAError:
            return None
    host = host.lower()
    labels = host.split(".")
    if len(host) > 253 or len(labels) < 2 or not all(_LABEL_RE.fullmatch(label) for label in labels):
        return None
    # Browsers read a host whose last label is numeric as an IPv4 address, in
    # decimal, octal or hex ("0x7f.1", "2130706433"). Only the plain form is accepted.
    if labels[-1].isdigit() or labels[-1].startswith("0x"):
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            return None
    return host
