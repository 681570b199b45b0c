"""Where the client sends jobs and with which key: flags, environment, config file, records."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from foldserve.client import records
from foldserve.client.records import JobRecord
from foldserve.config import (
    Endpoint,
    load_config,
    resolve_endpoint,
    server_api_keys,
    state_dir,
)
from foldserve.errors import InputError

LAB_KEY = "lab-key-0123456789"
POD_KEY = "pod-key-9876543210"
ENV_KEY = "env-key-5555555555"

CONFIG = f"""\
default_profile = "lab"

[profiles.lab]
url = "http://gpu-box:8000"
api_key = "{LAB_KEY}"

[profiles.pod]
endpoint_id = "abc123"
api_key = "{POD_KEY}"

[serve]
api_keys = ["serve-1", "serve-2"]
"""


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No key or configuration of the machine running the tests leaks in."""
    for name in ("RUNPOD_API_KEY", "FOLDSERVE_API_KEY", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FOLDSERVE_STATE_DIR", str(tmp_path / "state"))
    config = tmp_path / "config.toml"
    monkeypatch.setenv("FOLDSERVE_CONFIG", str(config))
    return config


def write_config(path: Path, text: str = CONFIG) -> Path:
    path.write_text(text)
    return path


def test_url_gets_the_default_endpoint_path_and_the_env_key(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(isolated)
    monkeypatch.setenv("FOLDSERVE_API_KEY", ENV_KEY)
    endpoint = resolve_endpoint(url="http://gpu-box:8000/")
    assert endpoint.base_url == "http://gpu-box:8000/v2/local"
    assert endpoint.kind == "url"
    assert endpoint.api_key == ENV_KEY  # the environment comes before the config file


def test_url_without_env_key_uses_the_profile_for_that_url(isolated: Path) -> None:
    write_config(isolated)
    endpoint = resolve_endpoint(url="http://gpu-box:8000/v2/local")
    assert endpoint.api_key == LAB_KEY
    other = resolve_endpoint(url="http://elsewhere:8000/v2/mine")
    assert other.base_url == "http://elsewhere:8000/v2/mine"
    assert other.api_key is None  # no key is sent to a server no profile names


def test_endpoint_id_means_runpod_with_runpod_key(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(isolated)
    assert resolve_endpoint(endpoint_id="abc123").api_key == POD_KEY
    monkeypatch.setenv("RUNPOD_API_KEY", ENV_KEY)
    monkeypatch.setenv("FOLDSERVE_API_KEY", "not-for-runpod")
    endpoint = resolve_endpoint(endpoint_id="abc123")
    assert endpoint.base_url == "https://api.runpod.ai/v2/abc123"
    assert (endpoint.kind, endpoint.api_key) == ("runpod", ENV_KEY)


def test_named_profile_and_default_profile(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(isolated)
    monkeypatch.setenv("RUNPOD_API_KEY", ENV_KEY)
    pod = resolve_endpoint(profile="pod")
    # A profile named on the command line brings its own key, ahead of the environment.
    assert (pod.base_url, pod.api_key, pod.label) == (
        "https://api.runpod.ai/v2/abc123",
        POD_KEY,
        "pod",
    )
    default = resolve_endpoint()
    assert (default.base_url, default.api_key, default.profile) == (
        "http://gpu-box:8000/v2/local",
        LAB_KEY,
        "lab",
    )


def test_no_endpoint_and_no_default_says_how(isolated: Path) -> None:
    with pytest.raises(InputError) as caught:
        resolve_endpoint()
    text = caught.value.one_line()
    assert "--endpoint-id" in text and "--url" in text and str(isolated) in text


def test_url_and_endpoint_id_together_are_refused(isolated: Path) -> None:
    with pytest.raises(InputError, match="both --url and --endpoint-id"):
        resolve_endpoint(url="http://a:1", endpoint_id="abc")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("gpu-box:8000", "not an http(s) URL"),
        ("ftp://gpu-box/v2/local", "not an http(s) URL"),
        ("http://user:pw@gpu-box:8000", "may not carry a user"),
    ],
)
def test_bad_urls_are_refused(isolated: Path, url: str, problem: str) -> None:
    with pytest.raises(InputError, match=re.escape(problem)):
        resolve_endpoint(url=url)


def test_bad_endpoint_id_is_refused(isolated: Path) -> None:
    with pytest.raises(InputError, match="not a RunPod endpoint id"):
        resolve_endpoint(endpoint_id="../status")


def test_unknown_profile_names_the_known_ones(isolated: Path) -> None:
    write_config(isolated)
    with pytest.raises(InputError) as caught:
        resolve_endpoint(profile="labb")
    text = caught.value.one_line()
    assert "'labb'" in text and "lab, pod" in text and "[profiles.labb]" in text


def test_toml_syntax_error_names_file_and_line(isolated: Path) -> None:
    write_config(isolated, '[profiles.lab]\nurl = "http://a:1"\napi_key = oops\n')
    with pytest.raises(InputError) as caught:
        resolve_endpoint(profile="lab")
    assert caught.value.where == f"{isolated}:3"


def test_profile_with_url_and_endpoint_id_names_its_line(isolated: Path) -> None:
    write_config(isolated, '\n\n[profiles.both]\nurl = "http://a:1"\nendpoint_id = "x"\n')
    with pytest.raises(InputError, match="exactly one of url and endpoint_id") as caught:
        load_config()
    assert caught.value.where == f"{isolated}:3"


def test_misspelt_setting_is_an_error_not_ignored(isolated: Path) -> None:
    write_config(isolated, '[profiles.lab]\nurl = "http://a:1"\napi-key = "k"\n')
    with pytest.raises(InputError, match="unknown setting 'api-key'"):
        load_config()


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ('colour = "blue"\n', 1, "unknown setting 'colour'"),
        (
            '[profiles.lab]\nurl = "http://a:1"\n\n[profiles.pod]\nendpoint_id = "a/b"\n',
            5,
            "profiles.pod.endpoint_id: 'a/b' is not a RunPod endpoint id",
        ),
        ('[profiles.lab]\nurl = "gpu-box:8000"\n', 2, "profiles.lab.url: 'gpu-box:8000' is not"),
        ('profiles.lab.url = "http://a:1"\nprofiles.lab.colour = "x"\n', 2, "'colour' in ["),
        ('profiles.lab = "http://a:1"\n', 1, "profiles.lab must be a table"),
        ('[profiles.lab]\nurl = ""\n', 2, "profiles.lab.url must be a non-empty string"),
        ('[serve]\napi_keys = "one-key"\n', 2, "serve.api_keys must be a list"),
        ("default_profile = 7\n", 1, "default_profile must be a string"),
    ],
)
def test_wrong_values_name_the_key_and_its_line(
    isolated: Path, text: str, line: int, problem: str
) -> None:
    write_config(isolated, text)
    with pytest.raises(InputError) as caught:
        load_config()
    assert problem in caught.value.problem
    assert caught.value.where == f"{isolated}:{line}"
    assert caught.value.fix
    assert "\n" not in caught.value.one_line()


def test_a_wrong_value_never_shows_a_key(isolated: Path) -> None:
    write_config(isolated, f'[profiles.lab]\napi_key = "{LAB_KEY}"\nurl = 8000\n')
    with pytest.raises(InputError, match=r"profiles\.lab\.url must be a string") as caught:
        load_config()
    assert caught.value.where == f"{isolated}:3"
    assert LAB_KEY not in caught.value.one_line()


def test_default_profile_must_exist(isolated: Path) -> None:
    write_config(isolated, 'default_profile = "gone"\n')
    with pytest.raises(InputError, match="'gone' is not defined") as caught:
        load_config()
    assert caught.value.where == f"{isolated}:1"


def test_keys_are_not_in_reprs(isolated: Path) -> None:
    write_config(isolated)
    config = load_config()
    endpoint = resolve_endpoint(profile="lab")
    shown = " ".join([repr(endpoint), str(endpoint), repr(config), str(config.profiles)])
    for key in (LAB_KEY, POD_KEY, "serve-1"):
        assert key not in shown
    assert "gpu-box" in shown


def test_server_keys_from_env_and_config(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert server_api_keys() == ()
    write_config(isolated)
    monkeypatch.setenv("FOLDSERVE_API_KEY", ENV_KEY)
    assert server_api_keys() == (ENV_KEY, "serve-1", "serve-2")


def test_server_keys_must_be_strings(isolated: Path) -> None:
    write_config(isolated, "[serve]\napi_keys = [1, 2]\n")
    with pytest.raises(InputError, match="api_keys must be a list") as caught:
        server_api_keys()
    assert caught.value.where == f"{isolated}:2"


def test_state_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert state_dir() == tmp_path / "state"
    monkeypatch.delenv("FOLDSERVE_STATE_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert state_dir() == tmp_path / "xdg" / "foldserve"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert state_dir() == tmp_path / "home" / ".local" / "state" / "foldserve"


# --- job records -----------------------------------------------------------------------------


def test_record_round_trip_keeps_no_key(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FOLDSERVE_API_KEY", ENV_KEY)
    endpoint = resolve_endpoint(url="http://gpu-box:8000")
    record = JobRecord.new(
        "job-1", endpoint, msa="in.a3m", output=tmp_path / "best.pdb", out_dir=None
    )
    path = records.save(record)
    assert path == tmp_path / "state" / "jobs" / "job-1.json"
    assert ENV_KEY not in path.read_text()
    assert path.stat().st_mode & 0o077 == 0  # readable by its owner only

    loaded = records.load("job-1")
    assert loaded == record
    assert loaded.output == str(tmp_path / "best.pdb")
    assert Path(loaded.msa or "").is_absolute()  # valid from any later working directory
    # The key is resolved again at use, from wherever it lives now.
    monkeypatch.setenv("FOLDSERVE_API_KEY", "rotated-key")
    assert loaded.endpoint() == Endpoint(
        "http://gpu-box:8000/v2/local", "rotated-key", "url", "http://gpu-box:8000/v2/local"
    )
    assert records.update_status(loaded, "COMPLETED").status == "COMPLETED"
    assert json.loads(path.read_text())["status"] == "COMPLETED"


def test_profile_record_resolves_the_profile_key(isolated: Path) -> None:
    write_config(isolated)
    record = JobRecord.new(
        "job-2", resolve_endpoint(profile="pod"), msa=None, output=None, out_dir=None
    )
    records.save(record)
    assert records.load("job-2").endpoint().api_key == POD_KEY


@pytest.mark.parametrize("job_id", ["../../etc/passwd", "a/b", "", ".hidden", "x" * 200])
def test_job_ids_cannot_escape_the_records_dir(job_id: str) -> None:
    with pytest.raises(InputError, match="is not a job id"):
        records.record_path(job_id)


def test_missing_record_says_how_to_name_the_endpoint() -> None:
    with pytest.raises(InputError) as caught:
        records.load("never-submitted")
    assert "--url" in caught.value.one_line()


def test_damaged_record_is_a_user_error(tmp_path: Path) -> None:
    path = records.record_path("job-3")
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(InputError, match="damaged") as caught:
        records.load("job-3")
    assert caught.value.where == str(path)


def test_runpod_error_blobs_are_shown_as_their_message() -> None:
    import json

    from foldserve.client.client import JobState

    blob = json.dumps(
        {
            "error_type": "<class 'foldserve.errors.InputError'>",
            "error_message": "input.models: no AlphaFold2 model 7. Fix: choose among 1 to 5",
            "error_traceback": "Traceback (most recent call last): ...",
        }
    )
    state = JobState.from_json({"id": "j1", "status": "FAILED", "error": blob}, "j1")
    assert state.error == "input.models: no AlphaFold2 model 7. Fix: choose among 1 to 5"
    plain = JobState.from_json({"id": "j1", "status": "FAILED", "error": "worker died"}, "j1")
    assert plain.error == "worker died"
