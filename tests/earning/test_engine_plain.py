"""The engine's shortcut for a one-line purchase under no rule (`engine._plain`, most of a bulk
batch) gives exactly what the general pipeline (`engine.walk`) gives, for every rounding."""

from __future__ import annotations

import random
from decimal import Decimal

from services.earning import engine
from shared.money import Rounding


def test_the_plain_shortcut_equals_the_pipeline_for_any_amount_rate_and_rounding():
    rng = random.Random(20261203)
    rates = [
        Decimal("0"),
        Decimal("1"),
        Decimal("0.5"),
        Decimal("2.25"),
        Decimal("0.000001"),
        Decimal("13.333333"),
    ]
    amounts = [
        Decimal("0.01"),
        Decimal("12.90"),
        Decimal("12.50"),
        Decimal("0.5"),
        Decimal("99999999.999999"),
    ]
    amounts += [Decimal(rng.randint(1, 10**8)) / Decimal(10 ** rng.randint(0, 6)) for _ in range(3000)]
    checked = 0
    for amount in amounts:
        for rate in rates:
            for rounding in (Rounding.FLOOR, Rounding.HALF_UP):
                basket = engine.Basket.single(amount)
                terms = engine.Terms(rate, rounding, ())
                assert engine.evaluate(basket, terms) == engine.walk(basket, terms), (amount, rate, rounding)
                checked += 1
    assert checked == len(amounts) * len(rates) * 2


def test_a_line_with_a_sku_under_no_rule_takes_the_shortcut_with_the_same_result():
    line = engine.Line("SKU-1", "coffee", 3, Decimal("7.80"))
    basket = engine.Basket((line,), Decimal("7.80"))
    terms = engine.Terms(Decimal("1"), Rounding.HALF_UP, ())
    assert engine.evaluate(basket, terms) == engine.walk(basket, terms)
    assert engine.evaluate(basket, terms).points == 8
