"""Texts a report translates, marked where they are written so that Babel extracts them.

The API, the exports and the CLI speak English: a marked text is the English string it always
was. Only the evaluation report translates (`api/reports/locale/`, see the README):

- `N_(text)` marks a fixed text (an enum value, a word) for extraction and returns it as is;
  the report looks it up with gettext.
- `Msg(template, **args)` is the English text of `template` with `args` put in (numbers with
  `:g`, as an f-string would), a `str` everywhere; it remembers the template and the args, so
  that `say` can put the same args into the template's translation, numbers in the report's
  locale. An arg is a name, unit or id (never translated), a number, a `Msg`, or a tuple of
  them (joined with "; ").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Union

Arg = Union[str, float, "Msg", tuple["Msg", ...]]
Gettext = Callable[[str], str]
Num = Callable[[float], str]
_LIST = ""  # the template of `Msg.listing`: its items only, nothing to translate


def N_(text: str) -> str:  # the gettext convention, a Babel keyword
    return text


def _english(value: Arg) -> str:
    if isinstance(value, tuple):
        return "; ".join(value)
    if isinstance(value, str):
        return str(value)
    return f"{value:g}"


class Msg(str):
    """An English text made from a translatable template (see the module doc)."""

    template: str
    args: dict[str, Arg]

    def __new__(cls, template: str, /, **args: Arg) -> Msg:
        if template == _LIST:
            text = _english(args.get("items", ()))
        else:
            text = template.format(**{k: _english(v) for k, v in args.items()}) if args \
                else template
        self = super().__new__(cls, text)
        self.template, self.args = template, args
        return self

    @classmethod
    def listing(cls, items: tuple[Msg, ...]) -> Msg:
        """The items joined with "; ", each translated on its own."""
        return cls(_LIST, items=items)

    def say(self, gettext: Gettext, num: Num) -> str:
        """This text in the language of `gettext`, numbers formatted by `num`."""
        def one(value: Arg) -> str:
            if isinstance(value, Msg):
                return value.say(gettext, num)
            if isinstance(value, tuple):
                return "; ".join(one(v) for v in value)
            if isinstance(value, str):
                return str(value)
            return num(value)

        if self.template == _LIST:
            return one(self.args["items"])
        translated = gettext(self.template)
        return translated.format(**{k: one(v) for k, v in self.args.items()}) if self.args \
            else translated


__all__ = ["N_", "Msg"]
