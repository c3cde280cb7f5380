"""A marked text is its English string everywhere, and says the same in another language."""

from __future__ import annotations

import copy
import pickle

from api.kpis.definitions import BY_ID, describe
from api.reports.render import Formats
from api.texts import Msg


def test_a_msg_is_its_english_text_with_numbers_as_an_fstring_puts_them() -> None:
    inner = Msg("{n} a year under {regime}", n=18, regime="Directive 2008/50/EC")
    text = Msg("mean {name} ({limit} µg/m³; {allowed})", name="NO2", limit=40.0,
               allowed=(inner, inner))
    assert text == "mean NO2 (40 µg/m³; 18 a year under Directive 2008/50/EC; 18 a year " \
        "under Directive 2008/50/EC)"
    assert isinstance(text, str) and Msg("plain") == "plain"
    assert Msg.listing(()) == "" and Msg.listing((inner,)) == str(inner)
    for copied in (copy.deepcopy(text), pickle.loads(pickle.dumps(text))):
        assert copied == text and isinstance(copied, Msg) and copied.args == text.args


def test_say_translates_the_template_and_each_part_numbers_in_the_locale() -> None:
    catalogue = {"mean {name} ({limit} µg/m³; {allowed})": "media di {name} ({limit} µg/m³; "
                 "{allowed})", "{n} a year under {regime}": "{n} all'anno secondo {regime}"}
    inner = Msg("{n} a year under {regime}", n=1500, regime="Directive 2008/50/EC")
    text = Msg("mean {name} ({limit} µg/m³; {allowed})", name="NO2", limit=2.5,
               allowed=(inner,))
    it = Formats("it")
    assert text.say(lambda s: catalogue.get(s, s), it.num) == \
        "media di NO2 (2,5 µg/m³; 1.500 all'anno secondo Directive 2008/50/EC)"
    assert text.say(lambda s: s, Formats("en").num) == \
        "mean NO2 (2.5 µg/m³; 1,500 a year under Directive 2008/50/EC)"


def test_the_report_says_a_kpi_in_its_language_the_api_keeps_english() -> None:
    kpi = BY_ID["pm10_daily_exceedances"]
    assert kpi.title == "Days with PM10 above 50 µg/m³"
    assert Formats("it").say(kpi.title) == "Giorni con PM10 oltre 50 µg/m³"
    assert "superamenti consentiti: 35 all'anno secondo Directive 2008/50/EC" in \
        Formats("it").say(kpi.formula)
    assert Formats("fr").say(describe(BY_ID["no2_mean"].limits)) == (
        "Directive 2008/50/EC : 40 µg/m³ (année civile); "
        "Directive (EU) 2024/2881 : 20 µg/m³ (année civile)")
    assert Formats("en").say(kpi.formula) == kpi.formula
