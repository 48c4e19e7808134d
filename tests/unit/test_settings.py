from __future__ import annotations

from pathlib import Path

import pytest

from app.cli import main
from app.settings import Settings, SettingsError, load_settings, normalise_database_url


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Settings read ACD_* variables and a .env in the cwd: isolate both.
    import os

    for name in list(os.environ):
        if name.startswith("ACD_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults_are_the_embedded_ones() -> None:
    s = load_settings()
    assert s.database_url == "sqlite+aiosqlite:///./acd.db"
    assert s.redis_url is None
    assert s.ami_host is None and not s.ami_enabled
    assert (s.agi_host, s.agi_port) == ("127.0.0.1", 4573)
    assert (s.http_host, s.http_port) == ("127.0.0.1", 8000)
    assert s.timezone == "Europe/Copenhagen"
    # Not in the (empty) working directory: the checkout's own folder is used.
    assert s.ivr_flows == Path(__file__).resolve().parents[2] / "ivr_flows"
    assert s.pbx_id == "pbx1"
    assert s.caller_hash_key is None


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACD_DATABASE_URL", "postgresql://u:p@db:5432/acd")
    monkeypatch.setenv("ACD_REDIS_URL", "redis://cache:6379/0")
    monkeypatch.setenv("ACD_AMI_HOST", "pbx.internal")
    monkeypatch.setenv("ACD_AMI_SECRET", "s3cret")
    monkeypatch.setenv("ACD_HTTP_PORT", "9000")
    s = load_settings()
    assert s.database_url == "postgresql+asyncpg://u:p@db:5432/acd"
    assert s.redis_url == "redis://cache:6379/0"
    assert s.ami_enabled and s.ami_host == "pbx.internal"
    assert s.ami_secret is not None and s.ami_secret.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(s)
    assert s.http_port == 9000


def test_relative_flows_folder_in_the_working_directory_wins(tmp_path: Path) -> None:
    (tmp_path / "ivr_flows").mkdir()
    assert load_settings().ivr_flows == Path("ivr_flows")


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("ACD_PBX_ID=pbx7\n", encoding="utf-8")
    assert load_settings().pbx_id == "pbx7"


def test_empty_optional_values_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACD_REDIS_URL", "")
    monkeypatch.setenv("ACD_AMI_HOST", " ")
    s = load_settings()
    assert s.redis_url is None and s.ami_host is None


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("ACD_AMI_PORT", "abc"),
        ("ACD_HTTP_PORT", "70000"),
        ("ACD_TIMEZONE", "Europe/Nowhere"),
        ("ACD_DATABASE_URL", "mysql://x"),
        ("ACD_REDIS_URL", "http://x"),
        ("ACD_PBX_ID", "Bad Id!"),
        ("ACD_CALLER_HASH_KEY", "short"),
        ("ACD_LOG_LEVEL", "LOUD"),
    ],
)
def test_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert var in str(err.value)


def test_cli_refuses_to_start_on_bad_config(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ACD_AMI_PORT", "abc")
    assert main(["serve"]) == 2
    assert "ACD_AMI_PORT" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://a@b/c", "postgresql+asyncpg://a@b/c"),
        ("postgres://a@b/c", "postgresql+asyncpg://a@b/c"),
        ("postgresql+asyncpg://a@b/c", "postgresql+asyncpg://a@b/c"),
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ],
)
def test_database_url_normalised(given: str, expected: str) -> None:
    assert normalise_database_url(given) == expected


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(Exception):  # noqa: B017  (pydantic's frozen error type)
        s.http_port = 1  # type: ignore[misc]


def test_the_centres_pbxs() -> None:
    assert load_settings(pbx_id="pbx2").centre_pbxs == ("pbx2",)
    both = load_settings(pbx_id="pbx2", pbxs=" pbx1, pbx2 ", redis_url="redis://127.0.0.1/0")
    assert both.pbxs == "pbx1,pbx2"
    assert both.centre_pbxs == ("pbx2", "pbx1")  # this process's own first
    with pytest.raises(SettingsError, match="must name this process's ACD_PBX_ID"):
        load_settings(pbx_id="pbx3", pbxs="pbx1,pbx2", redis_url="redis://127.0.0.1/0")
    with pytest.raises(SettingsError, match="set ACD_REDIS_URL"):
        load_settings(pbx_id="pbx1", pbxs="pbx1,pbx2")
    with pytest.raises(SettingsError, match=r"ACD_PBXS: .*twice"):
        load_settings(pbx_id="pbx1", pbxs="pbx1,pbx1", redis_url="redis://127.0.0.1/0")
    with pytest.raises(SettingsError, match="ACD_PBXS: "):
        load_settings(pbx_id="pbx1", pbxs="pbx1,PBX 2", redis_url="redis://127.0.0.1/0")
