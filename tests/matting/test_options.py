"""OutputOptions.parse, the one validation of every request option: per option its accepted values,
aliases, defaults and error message; and the strings a client sends parse back to the same options."""

from __future__ import annotations

import pytest

from matting import contract
from matting.options import (FORMATS, FOREGROUNDS, KINDS, MAX_OPTION_CHARS, MODELS, QUOTED_CHARS, REFINE_MODES, OptionsError,
                             OutputOptions, parse_color)


def parsed(**strings) -> OutputOptions:
    return OutputOptions.parse(**strings)


@pytest.mark.parametrize("value", KINDS)
def test_kind_accepts_its_values_in_any_case(value):
    assert parsed(kind=f"  {value.upper()} ").kind == value


@pytest.mark.parametrize(("alias", "kind"), [("cutout", "rgba"), ("Transparent", "rgba"), ("matte", "alpha"),
                                             ("MASK", "alpha"), ("background", "composite")])
def test_kind_aliases(alias, kind):
    assert parsed(kind=alias).kind == kind


def test_kind_error_names_the_option_values_and_aliases():
    with pytest.raises(OptionsError, match=r"^kind must be one of rgba, alpha, composite \(or cutout=rgba, .*\), not 'sepia'$"):
        parsed(kind="sepia")


@pytest.mark.parametrize("value", FORMATS)
def test_format_accepts_its_values(value):
    assert parsed(format=value.upper()).format == value
    assert parsed(format=value).media_type == f"image/{value}"


def test_format_has_no_aliases_and_refuses_others():
    with pytest.raises(OptionsError, match=r"^format must be one of png, webp, not 'gif'$"):
        parsed(format="gif")


@pytest.mark.parametrize("value", FOREGROUNDS)
def test_foreground_accepts_its_values(value):
    assert parsed(foreground=value).foreground == value


def test_foreground_alias_and_error():
    assert parsed(foreground="Decontaminate").foreground == "estimate"
    with pytest.raises(OptionsError, match=r"^foreground must be one of original, estimate \(or decontaminate=estimate\), not 'magic'$"):
        parsed(foreground="magic")


@pytest.mark.parametrize("value", REFINE_MODES)
def test_refine_accepts_its_values(value):
    assert parsed(refine=value.upper()).refine == value


@pytest.mark.parametrize(("alias", "mode"), [("off", "none"), ("guided-filter", "guided"), ("closed_form", "closed-form"),
                                             ("ClosedForm", "closed-form")])
def test_refine_aliases(alias, mode):
    assert parsed(refine=alias).refine == mode


def test_refine_error_and_the_removed_refiner():
    with pytest.raises(OptionsError, match="refine must be one of none, guided, closed-form"):
        parsed(refine="refiner")
    with pytest.raises(OptionsError, match=r"^refine must be one of none, guided, closed-form \(or off=none, .*\), not 'sharpen'$"):
        parsed(refine="sharpen")


@pytest.mark.parametrize(("text", "rgb"), [("#ff8800", (255, 136, 0)), ("#f80", (255, 136, 0)), ("white", (255, 255, 255)),
                                           ("10, 20,30", (10, 20, 30)), ("rgb(1,2,3)", (1, 2, 3)), ("0,0,0", (0, 0, 0))])
def test_bg_color_accepts_hex_names_and_rgb_triples(text, rgb):
    assert parse_color(text) == rgb
    assert parsed(bg_color=text).bg_color == rgb


@pytest.mark.parametrize("text", ["not-a-colour", "300,0,0", "-1,0,0", "1,2", "1,2,3,4", "#12345", "rgb(300,0,0)",
                                  "hsl(400,200%,50%)"])
def test_bg_color_refuses_what_is_not_a_colour_instead_of_clamping(text):
    with pytest.raises(OptionsError, match=r"^bg_color '.*' is not a colour: use '#RRGGBB', a name like 'white' or 'R,G,B' with each value 0-255$"):
        parsed(bg_color=text)


def test_empty_or_missing_values_mean_the_defaults():
    assert parsed() == parsed(kind="", format=" ", bg_color="", foreground=None, refine="") == OutputOptions()
    assert (OutputOptions().kind, OutputOptions().format, OutputOptions().bg_color_hex) == ("rgba", "png", "#ffffff")


@pytest.mark.parametrize("value", MODELS)
def test_model_accepts_the_served_networks_and_picks_their_ensemble(value):
    options = parsed(model=value.upper())
    assert options.model == value and options.ensemble == f"matting_{value}"
    assert "model" not in options.as_strings(), "the model travels as the ensemble's name"


def test_model_aliases_default_and_error():
    assert parsed(model="fast").model == "u2netp" and parsed(model="Quality").model == "u2net"
    assert parsed().model is None and parsed().ensemble == contract.ENSEMBLE, "no model: the server's default"
    with pytest.raises(OptionsError, match=r"^model must be one of u2net, u2netp \(or fast=u2netp, .*\), not 'isnet'$"):
        parsed(model="isnet")


@pytest.mark.parametrize(("value", "tta"), [("flip", "flip"), ("FLIP", "flip"), ("mirror", "flip"), ("off", "none"), ("", "none")])
def test_tta_values_aliases_and_ensembles(value, tta):
    options = parsed(tta=value)
    assert options.tta == tta and "tta" not in options.as_strings()
    assert options.ensemble == ("matting_flip" if tta == "flip" else "matting")
    assert parsed(tta=value, model="u2netp").ensemble == ("matting_u2netp_flip" if tta == "flip" else "matting_u2netp")


def test_tta_error():
    with pytest.raises(OptionsError, match=r"^tta must be one of none, flip \(or off=none, mirror=flip\), not 'rotate'$"):
        parsed(tta="rotate")


def test_a_long_bad_value_is_quoted_short():
    with pytest.raises(OptionsError, match="^kind must be one of") as refused:
        parsed(kind="x" * MAX_OPTION_CHARS)
    assert len(str(refused.value)) < QUOTED_CHARS + 200


@pytest.mark.parametrize("option", ["kind", "format", "bg_color", "foreground", "refine", "model", "tta"])
def test_every_value_is_length_checked_before_it_is_parsed(option):
    """Even blanks, which would otherwise mean the default; the message never repeats the value."""
    message = rf"^{option} is 1,000,000 characters long; option values are at most {MAX_OPTION_CHARS}$"
    with pytest.raises(OptionsError, match=message):
        parsed(**{option: " " * 1_000_000})
    assert parsed(bg_color="lightgoldenrodyellow").bg_color == (250, 250, 210), "the longest colour name passes"


def test_the_strings_a_client_sends_parse_back_to_the_same_options():
    options = parsed(kind="composite", format="webp", bg_color="10,20,30", foreground="estimate", refine="guided")
    assert set(options.as_strings()) == set(contract.OPTION_INPUTS)
    assert OutputOptions.parse(**options.as_strings()) == options
    assert OutputOptions.parse(**options.as_strings(), model="u2netp").ensemble == "matting_u2netp"
