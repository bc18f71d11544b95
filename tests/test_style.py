"""static/style.css: its colours against WCAG 2's contrast ratios."""

import re

from webapp.config import ROOT
from webapp.dashboard import HEAT_LEVELS


def css_rules() -> dict[str, dict[str, str]]:
    """style.css's declarations by selector (media queries flattened), custom properties resolved."""
    text = re.sub(r"/\*.*?\*/", "", (ROOT / "static" / "style.css").read_text(), flags=re.S)
    rules: dict[str, dict[str, str]] = {}
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", text):
        declarations = dict(
            (name.strip(), value.strip())
            for name, value in (line.split(":", 1) for line in body.split(";") if ":" in line)
        )
        for selector in selectors.split(","):
            rules.setdefault(selector.strip(), {}).update(declarations)
    variables = rules[":root"]
    return {
        selector: {name: re.sub(r"var\((--[\w-]+)\)", lambda m: variables[m.group(1)], value)
                   for name, value in declarations.items()}
        for selector, declarations in rules.items()
    }


def contrast(first: str, second: str) -> float:
    """WCAG 2's contrast ratio of the colours in two declarations' values ("2px dashed #858e9e")."""
    def luminance(value: str) -> float:
        digits = re.search(r"#([0-9a-fA-F]{6}|[0-9a-fA-F]{3})\b", value).group(1)
        digits = digits if len(digits) == 6 else "".join(c * 2 for c in digits)
        channels = [int(digits[i:i + 2], 16) / 255 for i in (0, 2, 4)]
        red, green, blue = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
        return 0.2126 * red + 0.7152 * green + 0.0722 * blue

    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def test_links_and_form_controls_stand_out_enough():
    rules = css_rules()
    page, card = rules["body"]["background"], rules[".card"]["background"]
    assert contrast(rules["a"]["color"], page) >= 4.5 and contrast(rules["a"]["color"], card) >= 4.5
    assert contrast(rules[".button"]["color"], rules[".button"]["background"]) >= 4.5
    # WCAG 1.4.11: a control's boundary at least 3:1 against what is around it, the form's card.
    assert contrast(rules[".drop-zone"]["border"], card) >= 3
    assert contrast(rules["select"]["border"], card) >= 3


def test_every_heat_level_has_readable_text():
    rules = css_rules()
    for level in range(HEAT_LEVELS + 1):
        shade = rules[f".heat-{level}"]
        text = shade.get("color", rules[".heat"]["color"])
        assert contrast(text, shade["background"]) >= 4.5, level
