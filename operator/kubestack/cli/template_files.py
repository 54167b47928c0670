"""What `kubestack stack create|update|validate` reads for a stack: the template, the
environments and every file they refer to, from local paths or http(s):// and file:// URLs,
as python-heatclient reads them (``template_utils.get_template_contents`` and
``process_multiple_environments_and_files``). The operator never fetches anything: all of it
travels in the Stack (``spec.template``, ``spec.files``, ``spec.environment``).

* ``-t`` / ``-e`` take a path or a URL; a path is the ``file://`` URL of its absolute path
  (heatclient's ``normalise_file_path_to_url``).
* In a template, ``get_file: X`` and a template resource's ``type: X.yaml`` (.yml,
  .template) are read from ``urljoin(template's URL, X)``: relative to the template, an
  absolute URL as it is. In an environment the templates ``resource_registry`` maps types to
  are read relative to the environment (or the registry's ``base_url``; a ``resources:`` map's
  own ``base_url`` for its entries).
* A template read so (and a ``get_file`` of a HOT template, as OS::Heat::Stack's ``template``
  takes) is read in turn for what it refers to, relative to its own URL, once per URL (a
  template that nests itself is read once; the engine stops it at Heat's depth limit).
* Each lands in the files under the name the template gives (``lib/tier.yaml``,
  ``scripts/boot.sh``), the name the Stack engine looks up, as for templates read from
  local paths. When one name means two files (``boot.sh`` next to the top template and next
  to a nested one), the later reference is rewritten to the file's absolute URL and the file
  kept under that name, as heatclient does with every reference.
* Each document may be at most ``MAX_TEMPLATE_SIZE`` bytes, Heat's ``max_template_size``
  default (524288): a bigger one is refused before it is read any further. Contents that
  are not UTF-8 text are sent base64-encoded, as heatclient sends them (templates and
  environments must be text).
* A template or environment fetched over http(s) may not refer to a ``file://`` URL: a
  remote document does not get to read local files (heatclient would read them).

A failed read is one line (:class:`FetchError`): what was read, where it was referred to,
and why (``HTTP 404 Not Found``, ``No such file or directory``...).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

#: Heat's ``max_template_size`` default ("Maximum raw byte size of any template"), applied to
#: each template, environment and file read
MAX_TEMPLATE_SIZE = 524288
#: seconds an http(s) fetch may stall before it fails
FETCH_TIMEOUT = 60.0
SCHEMES = ("http", "https", "file")
_REMOTE = ("http", "https")

#: ``fetch(url, limit)``: the document's bytes (more than ``limit`` of them only to say it is too
#: big); raises OSError (or FetchError) with the reason it cannot be read
Fetcher = Callable[[str, int], bytes]


class FetchError(Exception):
    """A document cannot be read (one line: what, where it was referred to, why)."""


def is_url(ref: str) -> bool:
    """``ref`` is a URL (one with a scheme we read, or any ``scheme://``), not a path."""
    return urlsplit(ref).scheme in SCHEMES or "://" in ref


def to_url(ref: str) -> str:
    """The URL a ``-t`` / ``-e`` argument names: a URL as it is, a path as the ``file://`` URL
    of its absolute path."""
    if not is_url(ref):
        return Path(os.path.abspath(ref)).as_uri()
    _check_scheme(ref)
    parts = urlsplit(ref)
    if parts.scheme == "file" and not parts.path.startswith("/"):
        raise FetchError(f"cannot read {ref}: a file URL names an absolute path (file:///path/to/file)")
    return ref


def _check_scheme(url: str) -> None:
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise FetchError(f"cannot read {url}: unsupported URL scheme {scheme or '(none)'} "
                         "(http, https and file are read)")


def display(url: str) -> str:
    """A URL as the user thinks of it: a local file's path, else the URL."""
    parts = urlsplit(url)
    if parts.scheme == "file" and parts.netloc in ("", "localhost"):
        return urllib.request.url2pathname(parts.path)
    return url


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects stay on http(s) (urllib would follow one to ftp://)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        scheme = urlsplit(newurl).scheme
        if scheme not in _REMOTE:
            raise urllib.error.HTTPError(newurl, code, f"redirect to a {scheme} URL refused", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch_url(url: str, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of a file:// or http(s):// URL (one more than ``limit``:
    the document is too big); OSError with the reason it cannot be read."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise FetchError(f"cannot read {url}: a file URL on another host ({parts.netloc})")
        with open(urllib.request.url2pathname(parts.path), "rb") as fh:
            return fh.read(limit + 1)
    opener = urllib.request.build_opener(_HttpOnlyRedirects)
    request = urllib.request.Request(url, headers={"User-Agent": "kubestack", "Accept": "*/*"})
    with opener.open(request, timeout=FETCH_TIMEOUT) as resp:
        return resp.read(limit + 1)


def _reason(exc: BaseException) -> str:
    """Why a read failed, in a few words."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}".rstrip()
    if isinstance(exc, urllib.error.URLError):
        inner = exc.reason
        if isinstance(inner, OSError) and inner.strerror:
            return inner.strerror
        return str(inner)
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _text(data: bytes | str) -> str | None:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


class TemplateFiles:
    """Reads a template, environments and what they refer to into :attr:`files` (the Stack's
    ``spec.files``): :meth:`template`, :meth:`environment`, :meth:`read` (a parameter file)."""

    def __init__(self, fetch: Fetcher = fetch_url, limit: int = MAX_TEMPLATE_SIZE) -> None:
        self.fetch, self.limit = fetch, limit
        self.files: dict[str, str] = {}
        self._origin: dict[str, str] = {}           # a name in files -> the URL it was read from
        self._texts: dict[str, str | None] = {}     # URL -> its text in files (None: being read)
        self._waiting: dict[str, list[str]] = {}    # URL being read -> names waiting for its text

    # ------------------------------------------------------------------ entry points

    def template(self, ref: str) -> dict[str, Any]:
        """The template ``ref`` names (path or URL), with what it refers to read into the files."""
        from kubestack.orchestration.template import parse_document

        url = to_url(ref)
        text = self._document(url, ref, "template")
        doc = parse_document(text, "template")
        self._texts[url] = None
        changed = self._walk(doc, url)
        self._done(url, json.dumps(doc) if changed else text)
        return doc

    def environment(self, ref: str) -> dict[str, Any]:
        """The environment ``ref`` names (path or URL), with the templates its
        resource_registry maps types to read into the files (relative to it, or to the
        registry's ``base_url``)."""
        from kubestack.orchestration.template import parse_document

        url = to_url(ref)
        doc = parse_document(self._document(url, ref, "environment"), "environment")
        registry = doc.get("resource_registry")
        if isinstance(registry, dict):
            self._registry(registry, url, url)
        return doc

    def read(self, ref: str) -> str:
        """A parameter file's text: a URL fetched, a path read (relative to the working
        directory)."""
        url = to_url(ref)
        data = self._fetch(url, ref)
        text = _text(data)
        if text is None:
            raise FetchError(f"cannot read {ref}: not UTF-8 text")
        return text

    # ------------------------------------------------------------------ reading

    def _fetch(self, url: str, what: str) -> bytes | str:
        _check_scheme(url)
        try:
            data = self.fetch(url, self.limit)
        except FetchError:
            raise
        except (OSError, ValueError, http.client.HTTPException) as exc:
            # urllib's errors are OSErrors; a malformed URL is a ValueError
            raise FetchError(f"cannot read {what}: {_reason(exc)}") from None
        size = len(data.encode() if isinstance(data, str) else data)
        if size > self.limit:
            raise FetchError(f"cannot read {what}: it exceeds the maximum allowed size ({self.limit} bytes, "
                             "Heat's max_template_size)")
        return data

    def _document(self, url: str, what: str, kind: str) -> str:
        text = _text(self._fetch(url, what))
        if text is None:
            raise FetchError(f"cannot read {what}: the {kind} is not UTF-8 text")
        return text

    def _done(self, url: str, text: str) -> None:
        self._texts[url] = text
        for name in self._waiting.pop(url, []):
            self.files[name] = text

    # ------------------------------------------------------------------ references

    def _walk(self, doc: Any, base: str) -> bool:
        """Read what a template refers to (relative to ``base``, its URL); True when a
        reference was rewritten to an absolute URL (its name meant another file already)."""
        refs: list[tuple[dict, str, str, str]] = []
        self._template_refs(doc, base, refs)
        return self._resolve(refs)

    def _template_refs(self, node: Any, base: str, refs: list) -> None:
        from kubestack.orchestration.nested import is_template

        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, str) and (key == "get_file" or (key == "type" and is_template(value))):
                    how = "get_file" if key == "get_file" else "template resource type"
                    refs.append((node, key, base, f"{how} in {display(base)}"))
                else:
                    self._template_refs(value, base, refs)
        elif isinstance(node, list):
            for value in node:
                self._template_refs(value, base, refs)

    def _registry(self, registry: dict, env_url: str, parent_base: str, refs: list | None = None) -> bool:
        """A resource_registry (or a ``resources:`` map in it): its template entries read
        relative to its ``base_url``, else the enclosing one's."""
        from kubestack.orchestration.nested import is_template

        top = refs is None
        refs = [] if refs is None else refs
        base = registry.get("base_url") if isinstance(registry.get("base_url"), str) else parent_base
        if base != parent_base:
            base = urljoin(parent_base, base)
            if not base.endswith("/"):
                base += "/"  # as heatclient joins: base_url is a directory
        for key, target in registry.items():
            if key in ("base_url", "hooks", "restricted_actions"):
                continue
            if isinstance(target, dict):
                self._registry(target, env_url, base, refs)
            elif isinstance(target, str) and "::" not in target and is_template(target):
                refs.append((registry, key, base, f"resource_registry of {display(env_url)}"))
        return self._resolve(refs) if top else False

    def _resolve(self, refs: list[tuple[dict, str, str, str]]) -> bool:
        """Give each reference ``node[key]`` (relative to its base) its name in the files, all
        of one document's first (they keep their names before the documents they refer to
        claim any), then read what is new. True when a reference was rewritten."""
        changed, new = False, []
        for node, key, base, where in refs:
            ref = node[key]
            url = self._join(base, ref, where)
            name = ref if self._origin.get(ref, url) == url else url
            if name != ref:
                node[key], changed = name, True
            if name not in self._origin:
                self._origin[name] = url
                self.files[name] = ""  # its place; its text once read
                new.append((name, url, where))
        for name, url, where in new:
            self._load(name, url, where)
        return changed

    def _load(self, name: str, url: str, where: str) -> None:
        """files[name] = the text of ``url`` (read once per URL; a URL being read, as by a
        template that nests itself, gives its text once it is read)."""
        if url in self._texts:
            text = self._texts[url]
            if text is None:
                self._waiting.setdefault(url, []).append(name)
            else:
                self.files[name] = text
            return
        self._texts[url] = None
        self._waiting.setdefault(url, []).append(name)
        data = self._fetch(url, f"{display(url)} ({where})")
        self._done(url, self._contents(data, url, name))

    def _contents(self, data: bytes | str, url: str, ref: str) -> str:
        """A file's text in the files: a HOT template's after what it refers to is read (its
        rewritten references, if any, as JSON, as heatclient sends nested templates), other
        text as it is, anything else base64-encoded (heatclient's way)."""
        from kubestack.orchestration import HeatError
        from kubestack.orchestration.nested import is_template
        from kubestack.orchestration.template import parse_document

        text = _text(data)
        if text is None:
            return base64.encodebytes(data if isinstance(data, bytes) else data.encode()).decode()
        if not is_template(urlsplit(url).path or ref):
            return text
        try:
            doc = parse_document(text, "template")
        except HeatError:
            return text  # loading the stack says what is wrong with it
        if "heat_template_version" not in doc:
            return text  # YAML that is not a template (e.g. cloud-config for get_file)
        return json.dumps(doc) if self._walk(doc, url) else text

    def _join(self, base: str, ref: str, where: str) -> str:
        """``ref``'s URL, relative to ``base`` (a template's or environment's URL). Relative to
        a local file a reference is a path (``%`` and spaces are characters of its name);
        relative to an http(s) one a URL reference (only what a URL cannot hold is quoted)."""
        if is_url(ref):
            url = ref
        elif urlsplit(base).scheme == "file":
            url = urljoin(base, quote(ref, safe="/"))
        else:
            url = urljoin(base, quote(ref, safe="/%:@!$&'()*+,;=?#[]~"))
        scheme = urlsplit(url).scheme
        if scheme not in SCHEMES:
            raise FetchError(f"cannot read {ref} ({where}): unsupported URL scheme {scheme} "
                             "(http, https and file are read)")
        if scheme == "file" and urlsplit(base).scheme in _REMOTE:
            raise FetchError(f"cannot read {ref} ({where}): a document fetched over {urlsplit(base).scheme} "
                             "may not read local files")
        return url
