"""A browser without JavaScript for the acceptance test: a ``requests`` session that reads the
forms of a page (their hidden CSRF token, what is ticked and chosen) and posts them as a browser
does, with the fields the person changes. Nothing is posted that the page does not offer, except
where a test forges a request on purpose (``post``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import unescape
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

Value = str | list[str] | None


@dataclass
class Control:
    name: str
    kind: str  # input type, "select", "select-multiple", "textarea", "button"
    value: str = ""
    checked: bool = False
    options: list[tuple[str, bool]] = field(default_factory=list)  # (value, selected)
    label: str = ""  # a button's text


@dataclass
class Form:
    action: str
    method: str
    attrs: dict[str, str]
    controls: list[Control] = field(default_factory=list)
    text: str = ""  # the text inside the form, for finding it

    def names(self) -> set[str]:
        return {c.name for c in self.controls}

    def options(self, name: str) -> list[str]:
        """The values a checkbox group, radio group or select offers under ``name``."""
        out: list[str] = []
        for c in self.controls:
            if c.name != name:
                continue
            if c.kind in ("checkbox", "radio"):
                out.append(c.value)
            elif c.kind.startswith("select"):
                out.extend(v for v, _ in c.options)
        return out

    def values(self, changes: dict[str, Value], button: str | None) -> list[tuple[str, str]]:
        """What the browser sends: the defaults, with ``changes`` (None unticks or leaves a
        field out; a list ticks exactly those boxes of a group)."""
        unknown = set(changes) - self.names()
        assert not unknown, f"the form offers no {sorted(unknown)} (it has {sorted(self.names())})"
        out: list[tuple[str, str]] = []
        done: set[str] = set()
        for c in self.controls:
            if c.kind in ("submit", "button", "image", "reset"):
                continue
            if c.name in changes:
                if c.name in done:
                    continue
                done.add(c.name)
                wanted = changes[c.name]
                if wanted is None:
                    continue
                if isinstance(wanted, list):
                    offered = set(self.options(c.name))
                    if offered and c.kind != "hidden":
                        missing = set(wanted) - offered
                        assert not missing, f"{c.name} offers no {sorted(missing)}"
                    out.extend((c.name, v) for v in wanted)
                else:
                    if c.kind in ("checkbox", "radio"):
                        offered = self.options(c.name)
                        assert wanted in offered, (c.name, wanted, offered)
                    out.append((c.name, wanted))
                continue
            if c.kind in ("checkbox", "radio"):
                if c.checked:
                    out.append((c.name, c.value or "on"))
            elif c.kind == "select":
                chosen = [v for v, s in c.options if s] or [v for v, _ in c.options[:1]]
                out.extend((c.name, v) for v in chosen[:1])
            elif c.kind == "select-multiple":
                out.extend((c.name, v) for v, s in c.options if s)
            else:
                out.append((c.name, c.value))
        if button is not None:
            buttons = [
                c
                for c in self.controls
                if c.kind in ("submit", "button", "image") and button in (c.name, c.value, c.label)
            ]
            assert buttons, f"no button {button!r} in the form"
            if buttons[0].name:
                out.append((buttons[0].name, buttons[0].value))
        return out


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._select: Control | None = None
        self._option: list[Any] | None = None
        self._textarea: Control | None = None
        self._button: Control | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self._form = Form(a.get("action", ""), a.get("method", "get").lower(), a)
            self.forms.append(self._form)
            return
        if self._form is None or "disabled" in a:
            return
        name = a.get("name", "")
        if tag == "input" and name:
            kind = a.get("type", "text").lower()
            self._form.controls.append(
                Control(
                    name, kind, a.get("value", "on" if kind == "checkbox" else ""), "checked" in a
                )
            )
        elif tag == "button":
            kind = a.get("type", "submit").lower()
            self._button = Control(name, kind, a.get("value", ""))
            self._form.controls.append(self._button)
        elif tag == "select" and name:
            self._select = Control(name, "select-multiple" if "multiple" in a else "select")
            self._form.controls.append(self._select)
        elif tag == "option" and self._select is not None:
            self._option = [a.get("value"), "selected" in a, ""]
        elif tag == "textarea" and name:
            self._textarea = Control(name, "textarea")
            self._form.controls.append(self._textarea)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._finish_option()
            self._select = None
        elif tag == "option":
            self._finish_option()
        elif tag == "textarea":
            if self._textarea is not None and self._textarea.value.startswith("\n"):
                self._textarea.value = self._textarea.value[1:]
            self._textarea = None
        elif tag == "button":
            self._button = None

    def _finish_option(self) -> None:
        if self._option is not None and self._select is not None:
            value, selected, text = self._option
            self._select.options.append((value if value is not None else text.strip(), selected))
        self._option = None

    def handle_data(self, data: str) -> None:
        if self._form is not None:
            self._form.text += data
        if self._option is not None:
            self._option[2] += data
        if self._textarea is not None:
            self._textarea.value += data
        if self._button is not None:
            self._button.label += data.strip()


def forms_of(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    return parser.forms


class Page:
    def __init__(self, url: str, response: requests.Response) -> None:
        self.url = url
        self.status = response.status_code
        self.text = response.text
        self.headers = response.headers

    @property
    def plain(self) -> str:
        """The page's text without tags, whitespace collapsed."""
        body = re.sub(r"<(script|style)\b.*?</\1>", " ", self.text, flags=re.S)
        return " ".join(unescape(re.sub(r"<[^>]+>", " ", body)).split())

    def form(self, action: str | None = None, *, containing: str | None = None) -> Form:
        """The form that posts to ``action`` (a path; None: to this page), optionally the one
        whose text holds ``containing``."""
        target = urlsplit(self.url).path if action is None else action
        found = []
        for candidate in forms_of(self.text):
            where = urlsplit(urljoin(self.url, candidate.action or self.url)).path
            if where == target and (containing is None or containing in candidate.text):
                found.append(candidate)
        assert found, f"no form to {target} on {self.url}"
        return found[0]


class Browser:
    """One person's browser: its own cookies (session, language)."""

    def __init__(self, base: str, *, language: str = "en") -> None:
        self.base = base
        self.session = requests.Session()
        if language:
            self.get(f"/language/{language}", expect=None)

    def _kept(self, response: requests.Response) -> requests.Response:
        """COOP_ENV=production marks the session cookie Secure; the test talks plain HTTP on
        loopback (the only http BASE_URL production accepts), where browsers send it too."""
        for cookie in self.session.cookies:
            cookie.secure = False
        return response

    def _url(self, path: str) -> str:
        return path if path.startswith("http") else self.base + path

    def path(self, url: str) -> str:
        assert url.startswith(self.base) or url.startswith("/"), url
        return url.removeprefix(self.base)

    def get(self, path: str, *, expect: int | None = 200) -> Page:
        response = self._kept(self.session.get(self._url(path), allow_redirects=False, timeout=60))
        page = Page(self._url(path), response)
        if expect is not None:
            assert page.status == expect, f"GET {path}: {page.status}\n{page.plain[:3000]}"
        return page

    def follow(self, path: str) -> Page:
        """GET, following redirects inside coop."""
        for _ in range(10):
            page = self.get(path, expect=None)
            if page.status in (301, 302, 303):
                path = self.path(page.headers["Location"])
                continue
            assert page.status == 200, f"GET {path}: {page.status}\n{page.plain[:3000]}"
            return page
        raise AssertionError(f"too many redirects from {path}")

    def post(self, path: str, data: list[tuple[str, str]] | dict[str, str]) -> requests.Response:
        """A request as it is sent; ``submit`` is the browser's way."""
        return self._kept(
            self.session.post(self._url(path), data=data, allow_redirects=False, timeout=120)
        )

    def submit(
        self,
        page: Page | str,
        changes: dict[str, Value] | None = None,
        *,
        action: str | None = None,
        containing: str | None = None,
        button: str | None = None,
        expect: int | None = 302,
    ) -> requests.Response:
        """Fill in the form of ``page`` (a page or a path to GET) and press its button."""
        if isinstance(page, str):
            page = self.get(page)
        form = page.form(action, containing=containing)
        target = urljoin(page.url, form.action or page.url)
        data = form.values(changes or {}, button)
        if form.method == "get":
            response = self.session.get(target, params=data, allow_redirects=False, timeout=60)
        else:
            response = self.session.post(target, data=data, allow_redirects=False, timeout=120)
        self._kept(response)
        if expect is not None:
            assert response.status_code == expect, (
                f"POST {target}: {response.status_code} (expected {expect})\n"
                + Page(target, response).plain[:4000]
            )
        return response

    def submit_to(
        self, page: Page | str, changes: dict[str, Value] | None = None, **kw: Any
    ) -> str:
        """``submit`` a form that redirects; returns the path it redirects to."""
        response = self.submit(page, changes, **kw)
        return self.path(response.headers["Location"])
