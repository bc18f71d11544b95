"""static/style.css: its colours against WCAG 2's contrast ratios, in the light scheme and the dark."""

import re

import pytest

from conftest import contrast
from webapp.config import ROOT
from webapp.dashboard import HEAT_LEVELS

# The dark scheme's rules: one level of rules inside the media query.
DARK = re.compile(r"@media \(prefers-color-scheme: dark\)\s*\{((?:[^{}]*\{[^{}]*\})*\s*)\}")
HEX = re.compile(r"#[0-9a-fA-F]{3,6}\b")
schemes = pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])


def css_rules(dark: bool = False) -> dict[str, dict[str, str]]:
    """style.css's declarations by selector (other media queries flattened), custom properties
    resolved: the light scheme's, or with `dark` those as the dark scheme overrides them."""
    text = re.sub(r"/\*.*?\*/", "", (ROOT / "static" / "style.css").read_text(), flags=re.S)
    dark_blocks = DARK.findall(text) if dark else []
    assert dark_blocks or not dark, "style.css has no dark scheme"
    rules: dict[str, dict[str, str]] = {}
    for block in [DARK.sub("", text), *dark_blocks]:
        for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", block):
            declarations = dict(
                (name.strip(), value.strip())
                for name, value in (line.split(":", 1) for line in body.split(";") if ":" in line)
            )
            for selector in selectors.split(","):
                rules.setdefault(selector.strip(), {}).update(declarations)
    variables = rules[":root"]

    def resolved(value: str) -> str:  # a variable's value can name another
        return re.sub(r"var\((--[\w-]+)\)", lambda m: resolved(variables[m.group(1)]), value)

    return {selector: {name: resolved(value) for name, value in declarations.items()}
            for selector, declarations in rules.items()}


@schemes
def test_text_is_readable_on_every_ground(dark):
    rules = css_rules(dark)
    text, muted, link = rules["body"]["color"], rules[".lead"]["color"], rules["a"]["color"]
    grounds = [rules["body"]["background"], rules[".card"]["background"],
               rules["table.data thead th"]["background"], rules["table.data tbody tr:hover"]["background"]]
    for ground in grounds:
        assert min(contrast(text, ground), contrast(muted, ground), contrast(link, ground)) >= 4.5, ground
    errors = rules[".errors"]
    assert contrast(errors["color"], errors["background"]) >= 4.5
    assert contrast(rules[".site-header a"]["color"], rules[".site-header"]["background"]) >= 4.5


@schemes
def test_links_and_form_controls_stand_out_enough(dark):
    rules = css_rules(dark)
    page, card = rules["body"]["background"], rules[".card"]["background"]
    assert contrast(rules["a"]["color"], page) >= 4.5 and contrast(rules["a"]["color"], card) >= 4.5
    assert contrast(rules[".button"]["color"], rules[".button"]["background"]) >= 4.5
    # WCAG 1.4.11: a control's boundary at least 3:1 against what is around it, the form's card.
    assert contrast(rules[".drop-zone"]["border"], card) >= 3
    assert contrast(rules["select"]["border"], card) >= 3


@schemes
def test_every_heat_level_has_readable_text(dark):
    rules = css_rules(dark)
    for level in range(HEAT_LEVELS + 1):
        shade = rules[f".heat-{level}"]
        text = shade.get("color", rules[".heat"]["color"])
        assert contrast(text, shade["background"]) >= 4.5, level


@schemes
def test_the_confusion_matrix_diagonal_stands_out_on_every_shade(dark):
    """WCAG 1.4.11: a mark 3:1 against what is around it, here the shade of its cell, inside which
    it is drawn."""
    rules = css_rules(dark)
    diagonal = rules[".heat.diagonal"]
    assert -float(diagonal["outline-offset"].removesuffix("px")) > float(diagonal["outline"].split("px")[0])  # inset
    for level in range(HEAT_LEVELS + 1):
        shade = rules[f".heat-{level}"]
        outline = diagonal["outline"].replace("currentColor", shade.get("color", rules[".heat"]["color"]))
        assert contrast(outline, shade["background"]) >= 3, level


def test_no_colour_stays_as_the_light_scheme_has_it():
    """But the header's white: its ground is dark in both schemes."""
    light, dark = css_rules(), css_rules(dark=True)
    kept = [f"{selector} {{ {name}: {value} }}" for selector, declarations in light.items()
            for name, value in declarations.items()
            if HEX.search(value) and dark[selector][name] == value and not selector.startswith(".site-header")]
    assert kept == []


@schemes
def test_a_secondary_button_reads_on_the_card(dark):
    rules = css_rules(dark)
    card, secondary = rules[".card"]["background"], rules[".button.secondary"]
    assert contrast(secondary["color"], secondary["background"]) >= 4.5
    assert contrast(secondary["border-color"], card) >= 3
