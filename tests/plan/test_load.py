"""Validation reports every problem at once as `file:line:col field.path: message`."""

from __future__ import annotations

from pathlib import Path

import pytest

from scalectl.errors import InputError
from scalectl.plan.load import load_plan
from tests.conftest import EXAMPLES, fixture_path
from tests.helpers.input_files import problems

MINIMAL = fixture_path("plans", "minimal.yaml").read_text()


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
@pytest.mark.parametrize("profile", ["production", "local"])
def test_examples_load(example: Path, profile: str) -> None:
    loaded = load_plan(example, profile)
    assert loaded.profile_name == profile


def test_unknown_key_with_did_you_mean(tmp_path: Path) -> None:
    text = MINIMAL.replace("    replicas: {min: 2, max: 10}", "    replicsa: {min: 2, max: 10}")
    assert problems(tmp_path, text) == [
        "5:5 services.api.replicas: required",
        "15:5 services.api.replicsa: unknown key; did you mean 'replicas'?",
    ]


def test_every_problem_at_once_in_file_order(tmp_path: Path) -> None:
    text = (
        MINIMAL.replace("peak_rps: 1000", "peak_rps: 0")
        .replace("target_utilization: 0.75", "target_utilization: 1.5")
        .replace("max_connections: 100", "max_connections: lots")
    )
    assert problems(tmp_path, text) == [
        "6:25 services.api.traffic.peak_rps: must be greater than 0",
        "9:27 services.api.capacity.target_utilization: must be less than 1",
        "17:40 database.primary.max_connections: must be a valid integer, unable to parse "
        "string as an integer",
    ]


def test_min_greater_than_max(tmp_path: Path) -> None:
    text = MINIMAL.replace("{min: 2, max: 10}", "{min: 12, max: 10}")
    assert problems(tmp_path, text) == ["15:21 services.api.replicas.min: must be <= max (12 > 10)"]


def test_requests_above_limits_and_pool(tmp_path: Path) -> None:
    text = MINIMAL.replace('requests: {cpu: "1"', 'requests: {cpu: "3"').replace(
        "pool: {min: 1, max: 5}", "pool: {min: 6, max: 5}"
    )
    assert problems(tmp_path, text) == [
        "13:23 services.api.resources.requests.cpu: must be <= limits.cpu (3 > 2)",
        "18:15 database.pool.min: must be <= max (6 > 5)",
    ]


def test_unpinned_image(tmp_path: Path) -> None:
    text = MINIMAL.replace("shop:1.2.3", "shop:latest")
    assert problems(tmp_path, text) == [
        "5:12 services.api.image: must not use the moving tag 'latest'; pin a version or digest"
    ]


@pytest.mark.parametrize(
    "image",  # as written in the YAML
    [
        '"registry.example.com/shop:1.2.3\\n"',  # a real newline, after YAML's escapes
        "registry.example.com/Shop:1.2.3",
        '"shop:1.2.3 x"',
        "'shop:1\"2'",
        "shop@sha256:abc",
        "registry.example.com//shop:1",
    ],
)
def test_image_names_match_a_strict_pattern(tmp_path: Path, image: str) -> None:
    # The name reaches Compose and Kubernetes files: only an image reference's grammar passes.
    text = MINIMAL.replace("registry.example.com/shop:1.2.3", image)
    [problem] = problems(tmp_path, text)
    assert problem.endswith(
        "services.api.image: must be an image reference such as ghcr.io/acme/api:1.4.2 "
        "(lowercase repository, a tag and/or an @sha256: digest)"
    )


def test_wrong_version_and_type(tmp_path: Path) -> None:
    text = MINIMAL.replace("version: 1", "version: 2").replace("keys: 1000000", "keys: [1, 2]")
    assert problems(tmp_path, text) == [
        "1:10 version: must be 1",
        "20:9 cache.keys: must be a valid integer",
    ]


def test_not_a_mapping(tmp_path: Path) -> None:
    assert problems(tmp_path, "- just\n- a list\n") == [
        f"{tmp_path / 'plan.yaml'}:1:1: a plan is a YAML mapping starting with 'version: 1'"
    ]


def test_malformed_yaml(tmp_path: Path) -> None:
    [line] = problems(tmp_path, MINIMAL.replace("name: shop", "name: [shop"))
    assert line.startswith(f"{tmp_path / 'plan.yaml'}:")
    assert "malformed YAML" in line


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_plan(tmp_path / "nope.yaml")


def test_unknown_profile_suggests(tmp_path: Path) -> None:
    [line] = problems(tmp_path, MINIMAL, profile="prodution")
    assert line.endswith("no profile named 'prodution'; did you mean 'production'?")


def test_profile_overrides_apply_and_errors_point_into_the_profile(tmp_path: Path) -> None:
    good = MINIMAL + (
        "profiles:\n"
        "  small:\n"
        "    upstreams: loopback\n"
        "    listen: 127.0.0.1:9000\n"
        "    overrides:\n"
        "      services:\n"
        "        api:\n"
        "          replicas: {min: 3, max: 3}\n"
    )
    path = tmp_path / "ok.yaml"
    path.write_text(good)
    loaded = load_plan(path, "small")
    assert loaded.plan.services["api"].replicas.min == 3
    assert load_plan(path, "production").plan.services["api"].replicas.min == 2

    bad = good.replace("{min: 3, max: 3}", "{min: 4, max: 3}")
    assert problems(tmp_path, bad, profile="small") == [
        "34:27 profiles.small.overrides.services.api.replicas.min: must be <= max (4 > 3)"
    ]


def test_unquoted_on_is_a_key_and_yes_no_words_fill_boolean_fields(tmp_path: Path) -> None:
    # YAML 1.1 read `on:` as the key True: "load_balancer.retries.True: unknown key".
    text = (
        MINIMAL.replace(
            "    replicas: {min: 2, max: 10}\n",
            "    replicas: {min: 2, max: 10}\n"
            "    pdb: off\n    autoscaling: {enabled: Yes}\n    env: {FEATURE: on}\n",
        )
        + "load_balancer:\n  retries:\n    on: [error, timeout]\n"
    )
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    plan = load_plan(path, "production").plan
    assert plan.load_balancer.retries.on == ["error", "timeout"]
    api = plan.services["api"]
    # A boolean field still reads the YAML 1.1 words as the boolean they meant...
    assert (api.pdb, api.autoscaling.enabled) == (False, True)
    # ...and a text field keeps them as text.
    assert api.env == {"FEATURE": "on"}


def test_a_boolean_field_refuses_other_words(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        "    replicas: {min: 2, max: 10}\n", "    replicas: {min: 2, max: 10}\n    pdb: maybe\n"
    )
    assert problems(tmp_path, text) == [
        "16:10 services.api.pdb: must be a valid boolean, unable to interpret input"
    ]
